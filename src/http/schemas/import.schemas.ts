// Schemas of the import routes, and the answer an import's row becomes.
import Type, { type Static } from 'typebox';
import type { ImportRow } from '../../db/queries/imports.queries.ts';
import { Uuid } from './common.schemas.ts';

export const Import = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  rows: Type.Integer({ description: 'data rows read so far; the total once done' }),
  processed: Type.Integer(),
  created: Type.Integer({ description: 'new registrations, enrolled or waitlisted' }),
  existing: Type.Integer({ description: 'rows whose email already held a registration for the course' }),
  waitlisted: Type.Integer({ description: 'of the created, those put on a waitlist' }),
  rejected: Type.Integer({ description: 'invalid rows, and rows refused (course full, closed or unknown)' }),
  errors: Type.Array(Type.Object({ line: Type.Integer(), message: Type.String() }), { description: 'the first 100 row errors' }),
  failure: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
});
export const ImportParams = Type.Object({ id: Uuid });

export type Import = Static<typeof Import>;

export function toImport(row: ImportRow): Import {
  return {
    id: row.id, status: row.status, rows: row.rows, processed: row.processed, created: row.created,
    existing: row.existing, waitlisted: row.waitlisted, rejected: row.rejected, errors: row.errors,
    failure: row.failure, createdAt: row.created_at.toISOString(), finishedAt: row.finished_at?.toISOString() ?? null,
  };
}
