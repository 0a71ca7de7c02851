// Course routes: anyone may read courses; only the admin creates and changes them.
import Type from 'typebox';
import { changeCourse, createCourse, getCourse, getCourses } from '../../domain/courses.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { NoQuery, problemResponses } from '../schemas/common.schemas.ts';
import { Course, CourseParams, CreateCourseBody, PatchCourseBody, toCourse } from '../schemas/course.schemas.ts';

export function registerCourseRoutes(app: App, { sql, auth }: RouteDeps): void {
  const admin = { onRequest: auth.requireAdmin, schema: { security: [{ bearer: [] }] } };

  app.post('/courses', {
    onRequest: admin.onRequest,
    schema: { ...admin.schema, tags: ['courses'], summary: 'Create a course (admin)', body: CreateCourseBody, response: { 201: Course, ...problemResponses(400, 401, 409) } },
  }, async function createCourseRoute(request, reply) {
    return reply.code(201).send(toCourse(await createCourse(sql, request.body)));
  });

  app.patch('/courses/:id', {
    onRequest: admin.onRequest,
    schema: { ...admin.schema, tags: ['courses'], summary: 'Change a course (admin); raising capacity promotes the waitlist in order', params: CourseParams, body: PatchCourseBody, response: { 200: Course, ...problemResponses(400, 401, 404, 409) } },
  }, async function changeCourseRoute(request) {
    return toCourse(await changeCourse(sql, request.params.id, request.body));
  });

  app.get('/courses', {
    schema: { tags: ['courses'], summary: 'List courses with their seats', querystring: NoQuery, response: { 200: Type.Array(Course), ...problemResponses(400) } },
  }, async function listCoursesRoute() {
    return (await getCourses(sql)).map(toCourse);
  });

  app.get('/courses/:id', {
    schema: { tags: ['courses'], summary: 'One course with its seats', params: CourseParams, response: { 200: Course, ...problemResponses(400, 404) } },
  }, async function getCourseRoute(request) {
    return toCourse(await getCourse(sql, request.params.id));
  });
}
