// Schemas shared by every route: the problem answer (RFC 9457) and the building blocks of
// input validation. These same objects validate requests and document them in /openapi.json.
import Type from 'typebox';

const COURSE_ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,63}$';

/**
 * No control characters (NUL cannot be stored), no lone surrogates (not valid UTF-8) and no
 * bidirectional embedding, override or isolate controls (U+202A-U+202E, U+2066-U+2069), which
 * make a name display as something else ("Trojan Source"). Emoji, ZWJ sequences included, pass.
 */
const PRINTABLE_PATTERN = '^[^\\p{Cc}\\p{Cs}\\u202A-\\u202E\\u2066-\\u2069]*$';

export const CourseId = Type.String({ pattern: COURSE_ID_PATTERN, description: 'lowercase letters, digits and dashes; 1-64 characters, starting with a letter or digit' });

export const PrintableText = (minLength: number, maxLength: number, description: string) =>
  Type.String({ minLength, maxLength, pattern: PRINTABLE_PATTERN, description });

// The WHATWG "valid e-mail address" grammar (what a browser's <input type=email> accepts).
const EMAIL_PATTERN = "^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$";

export const Email = Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN, description: 'an e-mail address; compared trimmed and case-insensitively' });

// A plain pattern, not format: 'uuid', which also passes "urn:uuid:..." (PostgreSQL refuses it).
export const Uuid = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'a UUID' });

export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 date-time' });

export const Problem = Type.Object({
  type: Type.String({ description: '/problems/<slug>' }),
  title: Type.String(),
  status: Type.Integer(),
  detail: Type.String(),
  errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  course: Type.Optional(Type.String({ description: 'the course that refused a request for several courses' })),
}, { description: 'RFC 9457 problem details' });

/** The query string of a route that takes no parameters: any parameter is 400, as on every route with a query schema. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Problem]));
