// Owns the bench's admin calls to the service: creating the courses a scenario needs.
import { request } from 'undici';

export type CourseSpec = { id: string; title: string; capacity: number; waitlistCapacity: number };

export async function createCourse(baseUrl: string, adminToken: string, course: CourseSpec): Promise<void> {
  const answer = await request(`${baseUrl}/courses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ ...course, opensAt: null, closesAt: null }),
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const text = await answer.body.text();
  if (answer.statusCode !== 201) throw new Error(`POST /courses ${course.id}: ${answer.statusCode} ${text.slice(0, 300)}`);
}
