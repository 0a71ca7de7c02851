// SQL for terms. The per-student counts (term_students) change only in the registrar_* SQL
// functions (src/db/functions/register-batch.sql, cancel.sql).
import type { Sql, TransactionSql } from '../database.ts';

/** A term as stored, with the ids of its courses. */
export type TermRow = {
  id: string;
  title: string;
  /** NULL: no limit. */
  max_courses_per_student: number | null;
  created_at: Date;
  course_ids: string[];
};

const COLUMNS = `id, title, max_courses_per_student, created_at,
  ARRAY(SELECT c.id FROM courses c WHERE c.term_id = terms.id ORDER BY c.id) AS course_ids`;

export type NewTerm = { id: string; title: string; maxCoursesPerStudent: number | null };

/** Returns undefined when a term with this id already exists. */
export async function insertTerm(sql: Sql, term: NewTerm): Promise<TermRow | undefined> {
  const [row] = await sql<TermRow[]>`
    INSERT INTO terms (id, title, max_courses_per_student) VALUES (${term.id}, ${term.title}, ${term.maxCoursesPerStudent})
    ON CONFLICT (id) DO NOTHING
    RETURNING ${sql.unsafe(COLUMNS)}`;
  return row;
}

export async function findTerm(sql: Sql | TransactionSql, id: string): Promise<TermRow | undefined> {
  const [row] = await sql<TermRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM terms WHERE id = ${id}`;
  return row;
}

export async function listTerms(sql: Sql): Promise<TermRow[]> {
  return sql<TermRow[]>`SELECT ${sql.unsafe(COLUMNS)} FROM terms ORDER BY id`;
}

/** Sets the title and the limit; undefined when there is no such term. The row is locked FOR
 * UPDATE first: a registration reads the limit under FOR KEY SHARE (register-batch.sql), which
 * the UPDATE's own FOR NO KEY UPDATE would not wait for. */
export async function updateTerm(sql: Sql, id: string, change: { title: string | null; maxCoursesPerStudent: number | null | undefined }): Promise<TermRow | undefined> {
  const [row] = await sql<TermRow[]>`
    WITH locked AS (SELECT id AS locked_id FROM terms WHERE id = ${id} FOR UPDATE)
    UPDATE terms SET title = coalesce(${change.title}, title),
      max_courses_per_student = ${change.maxCoursesPerStudent === undefined ? sql`max_courses_per_student` : sql`${change.maxCoursesPerStudent}`},
      updated_at = now()
    FROM locked WHERE terms.id = locked.locked_id
    RETURNING ${sql.unsafe(COLUMNS)}`;
  return row;
}
