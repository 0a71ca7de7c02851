// The rules for creating and changing terms. A term's limit (maxCoursesPerStudent) is enforced
// by the registration batch against the term counts (src/db/functions/register-batch.sql);
// changing it never cancels anyone: a student above a lowered limit keeps every registration,
// and a new one is refused until the student is under it.
import type { Sql } from '../db/database.ts';
import { findTerm, insertTerm, listTerms, type TermRow, updateTerm } from '../db/queries/terms.queries.ts';
import { DomainError } from './domain-error.ts';

export type NewTermInput = { id: string; title: string; maxCoursesPerStudent?: number | null };
export type TermPatch = { title?: string; maxCoursesPerStudent?: number | null };

function termNotFound(id: string): DomainError {
  return new DomainError('term-not-found', `There is no term "${id}"`);
}

export async function createTerm(sql: Sql, input: NewTermInput): Promise<TermRow> {
  const row = await insertTerm(sql, { id: input.id, title: input.title, maxCoursesPerStudent: input.maxCoursesPerStudent ?? null });
  if (!row) throw new DomainError('term-exists', `A term with id "${input.id}" already exists`);
  return row;
}

export async function getTerm(sql: Sql, id: string): Promise<TermRow> {
  const row = await findTerm(sql, id);
  if (!row) throw termNotFound(id);
  return row;
}

export async function getTerms(sql: Sql): Promise<TermRow[]> {
  return listTerms(sql);
}

/** The change waits for the registrations that read the limit under their locks, and they for
 * it: none decides on a limit older than one committed before it locked (docs/design.md, "Terms"). */
export async function changeTerm(sql: Sql, id: string, patch: TermPatch): Promise<TermRow> {
  const row = await updateTerm(sql, id, { title: patch.title ?? null, maxCoursesPerStudent: patch.maxCoursesPerStudent });
  if (!row) throw termNotFound(id);
  return row;
}
