// Test data: courses and students made to order.
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import type { Client } from './http.ts';

export type QueueOptions = { order: 'random' | 'arrival'; joinFrom?: string | null; admissionSeconds?: number; verifyEmail?: boolean };

export type CourseOptions = { capacity?: number; waitlistCapacity?: number; opensAt?: string | null; closesAt?: string | null; title?: string; queue?: QueueOptions | null; term?: string | null };

export async function newCourse(client: Client, options: CourseOptions = {}): Promise<string> {
  const id = `c-${randomBytes(5).toString('hex')}`;
  const answer = await client.admin('POST', '/courses', { id, title: options.title ?? `Course ${id}`, capacity: options.capacity ?? 10, waitlistCapacity: options.waitlistCapacity ?? 0, opensAt: options.opensAt ?? null, closesAt: options.closesAt ?? null, ...(options.queue === undefined ? {} : { queue: options.queue }), ...(options.term === undefined ? {} : { term: options.term }) });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return id;
}

/** A term whose students hold at most `maxCoursesPerStudent` active registrations in its courses (null: no limit). */
export async function newTerm(client: Client, maxCoursesPerStudent: number | null): Promise<string> {
  const id = `t-${randomBytes(5).toString('hex')}`;
  const answer = await client.admin('POST', '/terms', { id, title: `Term ${id}`, maxCoursesPerStudent });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return id;
}

export function student(course: string, n: number, prefix = 's') {
  return { name: `Student ${prefix}${n}`, email: `${prefix}${n}@example.org`, course };
}
