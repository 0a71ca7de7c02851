// Request validation: the route schemas compiled with Ajv, and Ajv's errors turned into the
// problem answer's `errors` list. Bodies are JSON and keep their types (no "100" for 100);
// query strings and path parameters are text and are coerced.
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from './problem.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true, // report every wrong field at once
    coerceTypes: coerceTypes ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    strict: false, // TypeBox adds keywords Ajv does not know (e.g. ~kind)
    verbose: true, // keeps the failing schema, for readable messages
  });
  addFormats(ajv);
  ajv.addFormat('date-time', { type: 'string', validate: storableDateTime(ajv.formats['date-time']) });
  return ajv;
}

/**
 * RFC 3339 admits instants the service cannot store: a leap second (23:59:60, which JavaScript's
 * Date cannot parse) and years outside 0001-9999 in UTC (year 0000, or 9999-12-31 with a
 * negative offset). Those fail validation (400) instead of failing in the database (500).
 */
function storableDateTime(rfc3339: unknown): (value: string) => boolean {
  const check = typeof rfc3339 === 'function' ? rfc3339 : (rfc3339 as { validate: (value: string) => boolean }).validate;
  return (value) => {
    if (!check(value)) return false;
    const time = Date.parse(value);
    if (!Number.isFinite(time)) return false;
    const year = new Date(time).getUTCFullYear();
    return year >= 1 && year <= 9999;
  };
}

const strictAjv = makeAjv(false);
const coercingAjv = makeAjv(true);

export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? strictAjv : coercingAjv;
  return ajv.compile(schema) as ReturnType<FastifySchemaCompiler<object>>;
};

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.split('/').filter(Boolean).join('.');
  const missing = error.keyword === 'required' ? String(error.params['missingProperty']) : undefined;
  const extra = error.keyword === 'additionalProperties' ? String(error.params['additionalProperty']) : undefined;
  const leaf = missing ?? extra;
  if (leaf !== undefined) return path ? `${path}.${leaf}` : leaf;
  return path || '(body)';
}

function messageOf(error: ErrorObject): string {
  const schema = error.parentSchema as { description?: string } | undefined;
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'pattern':
    case 'format':
      return schema?.description ? `must be ${schema.description}` : `must be a valid ${String(error.params['format'] ?? 'value')}`;
    case 'minProperties':
      return 'must contain at least one field';
    default:
      return error.message ?? 'is not valid';
  }
}

export function toFieldErrors(errors: readonly ErrorObject[], context: string | undefined): FieldError[] {
  const seen = new Set<string>();
  const fields: FieldError[] = [];
  for (const error of errors) {
    // anyOf/union branches repeat themselves; keep one message per field.
    if (error.keyword === 'anyOf') continue;
    const field = context === 'body' || context === undefined ? fieldOf(error) : `${context}.${fieldOf(error)}`;
    const message = messageOf(error);
    const key = `${field}\0${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    fields.push({ field, message });
  }
  return fields;
}

/** Surrounding spaces are not part of a name or an address: drops them from these string fields
 * of a body, before it is validated (a preValidation hook). */
export function trimFields(body: unknown, fields: readonly string[]): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const record = body as Record<string, unknown>;
  for (const field of fields) {
    const value = record[field];
    if (typeof value === 'string') record[field] = value.trim();
  }
}
