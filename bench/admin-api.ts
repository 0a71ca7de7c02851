// Owns the bench's admin calls to the service: creating the courses a scenario needs, and the
// changes that free a place (a cancel, a capacity raise).
import { request } from 'undici';

export type CourseSpec = { id: string; title: string; capacity: number; waitlistCapacity: number };

const ADMIN_TIMEOUT_MS = 30_000;

async function adminRequest(baseUrl: string, adminToken: string, method: 'POST' | 'PATCH' | 'DELETE', path: string, body: unknown, expectedStatus: number): Promise<void> {
  const answer = await request(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: ADMIN_TIMEOUT_MS,
    bodyTimeout: ADMIN_TIMEOUT_MS,
  });
  const text = await answer.body.text();
  if (answer.statusCode !== expectedStatus) throw new Error(`${method} ${path}: ${answer.statusCode} ${text.slice(0, 300)}`);
}

export async function createCourse(baseUrl: string, adminToken: string, course: CourseSpec): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'POST', '/courses', { ...course, opensAt: null, closesAt: null }, 201);
}

/** DELETE /registrations/{id} as the admin: the place goes to the waitlist, or is free. */
export async function cancelRegistration(baseUrl: string, adminToken: string, registrationId: string): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'DELETE', `/registrations/${encodeURIComponent(registrationId)}`, undefined, 200);
}

export async function changeCourseCapacity(baseUrl: string, adminToken: string, courseId: string, capacity: number): Promise<void> {
  await adminRequest(baseUrl, adminToken, 'PATCH', `/courses/${encodeURIComponent(courseId)}`, { capacity }, 200);
}
