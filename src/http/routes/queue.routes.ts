// Waiting-room routes: join a course's queue (public, rate limited per client like registering),
// see, verify and leave one's place (one of its queue tokens, or the admin token).
import { getQueuePlace, joinCourseQueue, leaveCourseQueue, verifyQueueEmail } from '../../domain/queue.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { CourseParams } from '../schemas/course.schemas.ts';
import { AlreadyQueued, JoinedQueuePlace, JoinQueueBody, QueuePlace, QueuePlaceParams, toQueuePlace } from '../schemas/queue.schemas.ts';
import { trimFields } from '../validation.ts';

export function registerQueueRoutes(app: App, { sql, auth, limit }: RouteDeps): void {
  const security = [{ bearer: [] }];

  app.post('/courses/:id/queue', {
    onRequest: limit('queue'),
    preValidation: async function trimJoin(request) {
      trimFields(request.body, ['name', 'email']);
    },
    schema: {
      tags: ['queue'],
      summary: 'Join a course\'s queue',
      description: '201 with the new place and its queueToken (given once), and an email to the address with a link to the place\'s page (a token of its own); 200 `{course, email, alreadyQueued: true}` when this email holds a place in this queue already (nothing stored is shown; the link is emailed again, at most once per 10 minutes). With the course\'s verifyEmail the place is `unverified` until the emailed link is opened (POST /queue/{id}/verify). Before opensAt the places have no position yet: at opensAt they are put in order once (random or arrival), later places queue behind.',
      params: CourseParams,
      body: JoinQueueBody,
      response: { 201: JoinedQueuePlace, 200: AlreadyQueued, ...problemResponses(400, 404, 409, 413, 429, 503) },
    },
  }, async function joinQueueRoute(request, reply) {
    const result = await joinCourseQueue(sql, { ...request.body, course: request.params.id });
    if (result.kind === 'created') {
      return reply.code(201).send({ ...toQueuePlace(result.place, null), queueToken: result.queueToken });
    }
    return reply.code(200).send({ course: result.course, email: result.email, alreadyQueued: true });
  });

  app.get('/queue/:id', {
    onRequest: limit('manage'), // a queue token cannot be guessed at speed
    schema: { tags: ['queue'], summary: 'A place with its live position and estimate, and its admission once admitted (queue token or admin)', security, params: QueuePlaceParams, response: { 200: QueuePlace, ...problemResponses(400, 401, 404) } },
  }, async function getQueuePlaceRoute(request) {
    const { place, admission } = await getQueuePlace(sql, request.params.id, auth.queueCredential(request));
    return toQueuePlace(place, admission);
  });

  app.delete('/queue/:id', {
    onRequest: limit('manage'),
    schema: { tags: ['queue'], summary: 'Leave the queue (queue token or admin); status left, again: 200', security, params: QueuePlaceParams, response: { 200: QueuePlace, ...problemResponses(400, 401, 404) } },
  }, async function leaveQueueRoute(request) {
    const { place, admission } = await leaveCourseQueue(sql, request.params.id, auth.queueCredential(request));
    return toQueuePlace(place, admission);
  });

  app.post('/queue/:id/verify', {
    onRequest: limit('manage'),
    schema: {
      tags: ['queue'],
      summary: 'Confirm the email of a place (verifyEmail): the token from its email, or the admin',
      description: 'With a course\'s `verifyEmail`, a place is `unverified` (not ranked, never admitted) until the link in one of its emails is opened: this call, with that email\'s token, makes it `waiting` (ranked at opensAt if before it, else next). The queueToken of the join answer does not verify (401). Already verified: 200, nothing changed.',
      security,
      params: QueuePlaceParams,
      response: { 200: QueuePlace, ...problemResponses(400, 401, 404) },
    },
  }, async function verifyQueueEmailRoute(request) {
    const { place, admission } = await verifyQueueEmail(sql, request.params.id, auth.queueCredential(request));
    return toQueuePlace(place, admission);
  });
}
