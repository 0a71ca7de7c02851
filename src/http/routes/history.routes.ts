// History routes: a course's history for the admin, paged newest first, and one registration's
// for its manage token ("why am I number 37").
import { pageCourseHistory } from '../../domain/history.service.ts';
import { getRegistrationHistory } from '../../domain/registration.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { CourseParams } from '../schemas/course.schemas.ts';
import { HistoryPage, HistoryQuery, RegistrationHistory, toHistoryEntry } from '../schemas/history.schemas.ts';
import { RegistrationParams } from '../schemas/registration.schemas.ts';

export function registerHistoryRoutes(app: App, { sql, auth, limit }: RouteDeps): void {
  const security = [{ bearer: [] }];

  app.get('/courses/:id/history', {
    onRequest: auth.requireAdmin,
    schema: { tags: ['history'], security, summary: 'Every change to the course\'s registrations, newest first, paged, with who made it and why (admin)', params: CourseParams, querystring: HistoryQuery, response: { 200: HistoryPage, ...problemResponses(400, 401, 404) } },
  }, async function courseHistoryRoute(request) {
    const page = await pageCourseHistory(sql, { courseId: request.params.id, after: request.query.after }, request.query.limit ?? 100);
    return { items: page.rows.map(toHistoryEntry), next: page.next };
  });

  app.get('/registrations/:id/history', {
    onRequest: limit('manage'),
    schema: { tags: ['history'], security, summary: 'Every change to a registration, newest first, with who made it and why (manage token or admin)', params: RegistrationParams, response: { 200: RegistrationHistory, ...problemResponses(400, 401, 404) } },
  }, async function registrationHistoryRoute(request) {
    return { items: (await getRegistrationHistory(sql, request.params.id, auth.registrationCredential(request))).map(toHistoryEntry) };
  });
}
