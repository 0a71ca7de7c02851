// Registration routes: register (public), see and cancel one's registration (manage token or
// admin), and the admin's list and CSV export of a course's registrations.
import { pipeline, Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { stringify } from 'csv-stringify';
import Type from 'typebox';
import { exportRegistrations, pageRegistrations } from '../../domain/registration-list.service.ts';
import { CourseRefusal, type RegisterCoursesInput, registerStudentForCourses } from '../../domain/multi-course-registration.service.ts';
import { cancelRegistration, getRegistration, registerStudent } from '../../domain/registration.service.ts';
import { DomainError } from '../../domain/domain-error.ts';
import type { App, RouteDeps } from '../app.ts';
import { domainProblem } from '../error-handler.ts';
import { problem, sendProblem } from '../problem.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { CourseParams } from '../schemas/course.schemas.ts';
import {
  AlreadyRegistered,
  AlreadyRegisteredCourses,
  CreatedRegistration,
  CreatedRegistrations,
  RegisterRequestBody,
  RegisterHeaders,
  Registration,
  RegistrationListQuery,
  RegistrationPage,
  RegistrationParams,
  toRegistration,
} from '../schemas/registration.schemas.ts';
import { trimFields } from '../validation.ts';

/** The courses of a request, trimmed like "course". */
function trimCourses(body: unknown): void {
  const courses = (body as { courses?: unknown } | null)?.courses;
  if (Array.isArray(courses)) courses.forEach((c, i) => { if (typeof c === 'string') courses[i] = c.trim(); });
}

const CSV_COLUMNS = ['id', 'course', 'name', 'email', 'status', 'waitlistPosition', 'createdAt'] as const;

export function registerRegistrationRoutes(app: App, { sql, auth, limit, registerOnSend }: RouteDeps): void {
  const adminOnly = auth.requireAdmin;
  const security = [{ bearer: [] }];

  app.post('/register', {
    onRequest: limit('register'),
    onSend: registerOnSend,
    preValidation: async function trimRegistration(request) {
      trimFields(request.body, ['name', 'email', 'course']);
      trimCourses(request.body);
    },
    schema: {
      tags: ['registrations'],
      summary: 'Register a student for a course, or for several all or nothing',
      description: '201 with a new registration and its manageToken; 200 `{course, email, alreadyRegistered: true}` when this email already holds an active registration for this course: nothing stored is shown, and a reminder email with a fresh manage link goes to that address (at most once per 10 minutes per registration). An Idempotency-Key replay gets the original answer, a 201 with its token. A course with a queue, while open, needs `admission` (from the admitted place, GET /queue/{id}): without a valid one, 403 `not-admitted` and nothing changes, answered after a hold of NOT_ADMITTED_HOLD_MS (1 s by default: retrying gains nothing, admission comes through the queue); an admission registers once. Several courses at once: `courses` (1-10 distinct ids) instead of `course`, all or nothing: 201 `{registrations: [...]}` (each with its manageToken) or nothing stored and a 409 (404 for an unknown course, 403 for a course with a queue, which registers alone with its admission) whose `course` names the course that refused; 409 `already-registered` when this email holds some of them already, 200 `{courses, email, alreadyRegistered: true}` when it holds all. `waitlist: false` asks for seats only: a course without a free seat refuses the request (409 `no-seat`).',
      headers: RegisterHeaders,
      body: RegisterRequestBody,
      response: {
        201: Type.Union([CreatedRegistration, CreatedRegistrations]),
        200: Type.Union([AlreadyRegistered, AlreadyRegisteredCourses]),
        ...problemResponses(400, 403, 404, 408, 409, 413, 422, 429, 503),
      },
    },
  }, async function registerRoute(request, reply) {
    const { course, courses, waitlist, admission, name, email } = request.body;
    const idempotencyKey = request.headers['idempotency-key'];
    if ((course === undefined) === (courses === undefined)) {
      return sendProblem(reply, problem(400, 'validation', 'Send exactly one of "course" (one course) and "courses" (several, all or nothing)'));
    }
    if (course === undefined || waitlist === false) {
      if (admission !== undefined) {
        return sendProblem(reply, problem(400, 'validation', '"admission" goes with one "course" (a queued course registers alone), without "waitlist": false'));
      }
      return registerCoursesRoute(reply, { name, email, courses: courses ?? [course!], waitlist: waitlist ?? true, idempotencyKey }, course !== undefined);
    }
    let result;
    try {
      result = await registerStudent(sql, { name, email, course, admission, idempotencyKey });
    } catch (error) {
      // A refusal (a full course: thousands a second in a rush) answered here, without the
      // framework's error path; anything else goes to the error handler.
      if (error instanceof DomainError) return sendProblem(reply, domainProblem(error));
      throw error;
    }
    if (result.kind === 'created') {
      return reply.code(201).send({ ...toRegistration(result.registration), manageToken: result.manageToken });
    }
    return reply.code(200).send({ course: result.course, email: result.email, alreadyRegistered: true });
  });

  /** Several courses, all or nothing; `single`: one course asked for seats only, answered as one. */
  async function registerCoursesRoute(reply: FastifyReply, input: RegisterCoursesInput, single: boolean) {
    let result;
    try {
      result = await registerStudentForCourses(sql, input);
    } catch (error) {
      if (error instanceof CourseRefusal) return sendProblem(reply, { ...domainProblem(error), ...(single ? {} : { course: error.course }) });
      if (error instanceof DomainError) return sendProblem(reply, domainProblem(error));
      throw error;
    }
    if (result.kind === 'created') {
      const created = result.registrations.map((r) => ({ ...toRegistration(r.registration), manageToken: r.manageToken }));
      return reply.code(201).send(single ? created[0] : { registrations: created });
    }
    return reply.code(200).send(single
      ? { course: result.courses[0]!, email: result.email, alreadyRegistered: true }
      : { courses: result.courses, email: result.email, alreadyRegistered: true });
  }

  app.get('/registrations/:id', {
    onRequest: limit('manage'), // a manage token cannot be guessed at speed
    schema: { tags: ['registrations'], summary: 'A registration with its current waitlist position (manage token or admin)', security, params: RegistrationParams, response: { 200: Registration, ...problemResponses(400, 401, 404) } },
  }, async function getRegistrationRoute(request) {
    return toRegistration(await getRegistration(sql, request.params.id, auth.registrationCredential(request)));
  });

  app.delete('/registrations/:id', {
    onRequest: limit('manage'),
    schema: { tags: ['registrations'], summary: 'Cancel a registration (manage token or admin); the seat goes to waitlist position 1', security, params: RegistrationParams, response: { 200: Registration, ...problemResponses(400, 401, 404) } },
  }, async function cancelRegistrationRoute(request) {
    return toRegistration(await cancelRegistration(sql, request.params.id, auth.registrationCredential(request)));
  });

  app.get('/courses/:id/registrations', {
    onRequest: adminOnly,
    schema: { tags: ['registrations'], summary: 'A course\'s registrations in arrival order, paged (admin)', security, params: CourseParams, querystring: RegistrationListQuery, response: { 200: RegistrationPage, ...problemResponses(400, 401, 404) } },
  }, async function listRegistrationsRoute(request) {
    const { status, after, limit } = request.query;
    const page = await pageRegistrations(sql, { courseId: request.params.id, status, after }, limit ?? 100);
    return { items: page.rows.map(toRegistration), next: page.next };
  });

  app.get('/courses/:id/registrations.csv', {
    onRequest: adminOnly,
    schema: { tags: ['registrations'], summary: 'A course\'s registrations as CSV, streamed (admin)', security, params: CourseParams, querystring: RegistrationListQuery },
  }, async function exportRegistrationsRoute(request, reply) {
    const rows = await exportRegistrations(sql, { courseId: request.params.id, status: request.query.status });
    const answers = (async function* toAnswers() {
      for await (const row of rows) yield toRegistration(row);
    })();
    // escape_formulas: a name like "=HYPERLINK(...)" must stay text in a spreadsheet.
    // pipeline, not pipe: when the client goes away the framework destroys `csv`, and pipeline
    // destroys the source too, which returns the answers' iterator and through it the rows'; that
    // closes the database cursor and gives its connection back (pipe would leave the cursor open,
    // its connection held).
    // An error mid-stream (the database) ends the cursor's query the same way.
    const csv = pipeline(Readable.from(answers), stringify({ header: true, columns: [...CSV_COLUMNS], escape_formulas: true }), (error) => {
      if (error && (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') request.log.warn({ err: error }, 'CSV export ended early');
    });
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${request.params.id}-registrations.csv"`)
      .send(csv);
  });
}
