// Owns the bench's admin calls to the service: creating the courses a scenario needs, the changes
// that free a place (a cancel, a capacity raise) or open a course, and reading a course back.
import { request } from 'undici';

export type CourseSpec = { id: string; title: string; capacity: number; waitlistCapacity: number };

const ADMIN_TIMEOUT_MS = 30_000;

async function adminRequest(baseUrl: string, adminToken: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body: unknown, expectedStatus: number): Promise<string> {
  const answer = await request(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: ADMIN_TIMEOUT_MS,
    bodyTimeout: ADMIN_TIMEOUT_MS,
  });
  const text = await answer.body.text();
  if (answer.statusCode !== expectedStatus) throw new Error(`${method} ${path}: ${answer.statusCode} ${text.slice(0, 300)}`);
  return text;
}

export async function createCourse(baseUrl: string, adminToken: string, course: CourseSpec): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'POST', '/courses', { ...course, opensAt: null, closesAt: null }, 201);
}

export type QueueSpec = { order: 'random' | 'arrival'; admissionSeconds: number };

/** A course with a waiting room that opens at `opensAt`; its places may be taken at once. */
export async function createQueuedCourse(baseUrl: string, adminToken: string, course: CourseSpec, opensAt: Date, queue: QueueSpec): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'POST', '/courses', { ...course, opensAt: opensAt.toISOString(), closesAt: null, queue }, 201);
}

export async function changeCourseOpensAt(baseUrl: string, adminToken: string, courseId: string, opensAt: Date): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'PATCH', `/courses/${encodeURIComponent(courseId)}`, { opensAt: opensAt.toISOString() }, 200);
}

/** GET /courses/{id}: the answer's JSON as the API speaks it. */
export async function readCourse(baseUrl: string, adminToken: string, courseId: string): Promise<Record<string, unknown> & { queue: null | { seedSha256: string | null; seed: string | null } }> {
  return JSON.parse(await adminRequest(baseUrl, adminToken, 'GET', `/courses/${encodeURIComponent(courseId)}`, undefined, 200));
}

/** DELETE /registrations/{id} as the admin: the place goes to the waitlist, or is free. */
export async function cancelRegistration(baseUrl: string, adminToken: string, registrationId: string): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'DELETE', `/registrations/${encodeURIComponent(registrationId)}`, undefined, 200);
}

export async function changeCourseCapacity(baseUrl: string, adminToken: string, courseId: string, capacity: number): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'PATCH', `/courses/${encodeURIComponent(courseId)}`, { capacity }, 200);
}
