// The live dashboard: a browser login (admin token -> session cookie), a static page, and a
// server-sent event stream that pushes the cluster's activity and the service's state every
// second. Static assets hold no data; everything user-provided reaches the page as JSON and is
// rendered with textContent.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { onRequestHookHandler } from 'fastify';
import Type from 'typebox';
import type { Sql } from '../../db/database.ts';
import { getCourses } from '../../domain/courses.service.ts';
import { pageCourseHistory } from '../../domain/history.service.ts';
import { readDeliveryState, readMailbox } from '../../domain/mailbox.service.ts';
import { type QueueFigures, readQueueFigures } from '../../domain/queue-figures.service.ts';
import type { ClusterView } from '../../observability/cluster-state.ts';
import type { RequestTracker } from '../../observability/request-tracker.ts';
import { secretsMatch } from '../../security/tokens.ts';
import type { App } from '../app.ts';
import type { DashboardSessions } from '../dashboard-session.ts';
import { problem, sendProblem } from '../problem.ts';
import { toCourse } from '../schemas/course.schemas.ts';
import { toDeliveryState } from '../schemas/delivery.schemas.ts';
import { toHistoryEntry } from '../schemas/history.schemas.ts';

const PAGES = path.join(import.meta.dirname, '..', 'pages');
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const SECURITY_HEADERS = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY', 'cache-control': 'no-store' };
const PUSH_INTERVAL_MS = 1_000;
/** Entries of a course's history the page shows: the newest; the rest is GET /courses/{id}/history. */
const HISTORY_ENTRIES = 15;

/**
 * uPlot (the charts), served from its package, never from a CDN. Its version is in the URL, so a
 * browser may keep the files for a year: a new version is a new URL. It needs no eval and sets
 * its inline styles through CSSOM, which the page's CSP allows.
 */
const requireFromHere = createRequire(import.meta.url);
const UPLOT_FILES = { js: requireFromHere.resolve('uplot/dist/uPlot.iife.min.js'), css: requireFromHere.resolve('uplot/dist/uPlot.min.css') };
const UPLOT_PREFIX = `/dashboard/vendor/uplot-${(requireFromHere('uplot/package.json') as { version: string }).version}`;
const ASSET_HEADERS = { ...SECURITY_HEADERS, 'cache-control': 'public, max-age=31536000, immutable' };

export type DashboardDeps = { sql: Sql; adminToken: string; sessions: DashboardSessions; clusterView: () => ClusterView; tracker: RequestTracker; limitLogin: onRequestHookHandler[] };

/** A waiting room's figures as the page shows them (dates as ISO strings). */
function toWaitingRoom(figures: QueueFigures) {
  return { ...figures, soldOutSince: figures.soldOutSince?.toISOString() ?? null };
}

/** The database part of the picture, read at most once a second per worker, whoever watches. */
function cachedServiceState(sql: Sql) {
  let cache: { at: number; value: Promise<unknown> } | undefined;
  return () => {
    if (!cache || Date.now() - cache.at >= PUSH_INTERVAL_MS) {
      const value = Promise.all([getCourses(sql), readDeliveryState(sql), readMailbox(sql, { limit: 8 }), readQueueFigures(sql)])
        .then(([courses, jobs, mail, waitingRooms]) => ({
          courses: courses.map(toCourse),
          waitingRooms: waitingRooms.map(toWaitingRoom),
          jobs: toDeliveryState(jobs),
          mail: mail.rows.map((m) => ({ id: m.id, to: m.recipient, subject: m.subject, createdAt: m.created_at.toISOString() })),
        }))
        .catch(() => ({ error: 'The database is not answering' }));
      cache = { at: Date.now(), value };
    }
    return cache.value;
  };
}

export async function registerDashboardRoutes(app: App, deps: DashboardDeps): Promise<void> {
  const files = ['dashboard.html', 'login.html', 'dashboard.js', 'dashboard.css'];
  const [pageHtml, loginHtml, script, style] = await Promise.all(files.map((file) => readFile(path.join(PAGES, file), 'utf8')));
  const dashboardHtml = pageHtml!.replaceAll('__UPLOT__', UPLOT_PREFIX);
  const serviceState = cachedServiceState(deps.sql);
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  const html = (description: string) => ({ description, content: { 'text/html': { schema: { type: 'string' } } } });
  app.get('/dashboard', {
    schema: { tags: ['operations'], summary: 'The live dashboard (admin login in the browser)', response: { 200: html('The dashboard'), 401: html('Not logged in: the login page') } },
  }, async function dashboardPage(request, reply) {
    reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8');
    return deps.sessions.isLoggedIn(request) ? reply.send(dashboardHtml) : reply.code(401).send(loginHtml);
  });
  app.get('/dashboard/dashboard.js', { schema: { hide: true } }, async function dashboardScript(_request, reply) {
    return reply.headers(SECURITY_HEADERS).type('text/javascript; charset=utf-8').send(script);
  });
  app.get('/dashboard/dashboard.css', { schema: { hide: true } }, async function dashboardStyle(_request, reply) {
    return reply.headers(SECURITY_HEADERS).type('text/css; charset=utf-8').send(style);
  });
  app.get(`${UPLOT_PREFIX}.iife.min.js`, { schema: { hide: true } }, async function uplotScript(_request, reply) {
    return reply.headers(ASSET_HEADERS).type('text/javascript; charset=utf-8').send(createReadStream(UPLOT_FILES.js));
  });
  app.get(`${UPLOT_PREFIX}.min.css`, { schema: { hide: true } }, async function uplotStyle(_request, reply) {
    return reply.headers(ASSET_HEADERS).type('text/css; charset=utf-8').send(createReadStream(UPLOT_FILES.css));
  });

  // The login page's form posts (never GETs: the token must not end up in a URL) as JSON from
  // its script, or as a plain form if the script did not run. The form parser is scoped to this
  // route: no other route takes form bodies. The cookie is SameSite=Strict, and a forged
  // cross-site login would need the admin token itself.
  await app.register(async function formLogin(plain) {
    const scope = plain.withTypeProvider<TypeBoxTypeProvider>();
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    scope.post('/dashboard/login', {
      onRequest: deps.limitLogin, // the admin token cannot be guessed at speed
      schema: { hide: true, body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 512 }) }, { additionalProperties: false }) },
    }, async function logIn(request, reply) {
      if (!secretsMatch(request.body.token, deps.adminToken)) {
        return sendProblem(reply, problem(401, 'unauthorized', 'That is not the admin token'));
      }
      deps.sessions.logIn(reply);
      // A plain form (no script) goes on to the dashboard; the script reloads the page itself.
      if (request.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return reply.code(303).header('location', '/dashboard').send();
      return reply.code(204).send();
    });
  });
  app.post('/dashboard/logout', { schema: { hide: true } }, async function logOut(_request, reply) {
    deps.sessions.logOut(reply);
    return reply.code(204).send();
  });

  // The recent history of the course the page selected, for its session (the page holds no
  // admin token to call GET /courses/{id}/history with).
  app.get('/dashboard/history', {
    schema: { hide: true, querystring: Type.Object({ course: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }) },
  }, async function dashboardHistory(request, reply) {
    if (!deps.sessions.isLoggedIn(request)) return sendProblem(reply, problem(401, 'unauthorized', 'Log in to the dashboard first'));
    const page = await pageCourseHistory(deps.sql, { courseId: request.query.course }, HISTORY_ENTRIES);
    return reply.headers({ 'cache-control': 'no-store' }).send({ items: page.rows.map(toHistoryEntry) });
  });

  app.get('/dashboard/events', { schema: { hide: true } }, async function dashboardEvents(request, reply) {
    if (!deps.sessions.isLoggedIn(request)) return sendProblem(reply, problem(401, 'unauthorized', 'Log in to the dashboard first'));
    reply.hijack();
    deps.tracker.forget(request);
    const stream = reply.raw;
    stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    streams.add(stream);
    let sending = false;
    const push = async () => {
      if (sending) return; // a slow client gets fewer frames, never a backlog
      sending = true;
      try {
        const state = { cluster: deps.clusterView(), service: await serviceState() };
        stream.write(`data: ${JSON.stringify(state)}\n\n`);
      } finally {
        sending = false;
      }
    };
    const timer = setInterval(() => void push(), PUSH_INTERVAL_MS);
    void push();
    stream.on('close', () => {
      clearInterval(timer);
      streams.delete(stream);
    });
  });
}
