// The naive design the bench's seed models 1-2 demonstrate, plugged into the service from outside:
// a 201 of POST /register waits until that registration's first email is sent. Loaded into a
// service process by email-in-request.plugin.ts; the request and the job never both send one email.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Config } from '../../src/config.ts';
import { connectDatabase, type Sql } from '../../src/db/database.ts';
import { createEmailDelivery, EMAIL_DATABASE_CONNECTIONS } from '../../src/jobs/email/deliver-email.ts';
import { createConfiguredTransport } from '../../src/jobs/email/mail-transport.ts';
import { createSendWindow } from '../../src/jobs/email/send-window.ts';
import { createLogger } from '../../src/observability/logger.ts';

/** Fastify 5 publishes `{ fastify }` here when an instance is created, before any route or hook. */
const FASTIFY_INITIALIZATION = 'fastify.initialization';

/** The environment that loads the plug-in into the service's processes (they inherit it). */
export function emailInRequestEnvironment(): Record<string, string> {
  return { NODE_OPTIONS: `--import ${pathToFileURL(path.join(import.meta.dirname, 'email-in-request.plugin.ts')).href}` };
}

/**
 * How long a creation email's job leaves it to the request from its insert (the hold trigger),
 * until the request claims it.
 */
const LEAVE_TO_REQUEST = '90 seconds';

/**
 * How long a claimed job waits while its request sends. A job may hold the emails of several
 * registrations (one batch), each sent by its own request, so no request can make it runnable
 * sooner without racing the others' sends; the hold covers an SMTP exchange within the
 * transport's 30 s step timeouts. An exchange or a record that takes longer can let the job
 * send a copy (a known limit of this demonstration).
 */
const HOLD_WHILE_SENDING = '90 seconds';

/** The application_name of each sender's pool, followed by its process id. */
const SENDER_APPLICATION_NAME = 'registrar-email-in-request-';

/**
 * A BEFORE INSERT trigger on graphile-worker's job table (0.17.3 is pinned): a send_email job
 * holding a creation event (enrolled, waitlisted) becomes runnable 90 s later, so the job worker,
 * woken by the commit, does not take it before the request's claim. Other emails are untouched.
 * An advisory lock orders the HTTP workers that install it at once; each one's process id is
 * written in email_in_request.senders, so the hold goes with the last of them (releaseCreationEmails).
 */
async function holdCreationEmails(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('email_in_request'))`;
    await tx`CREATE SCHEMA IF NOT EXISTS email_in_request`;
    await tx`CREATE TABLE IF NOT EXISTS email_in_request.senders (pid integer PRIMARY KEY)`;
    await tx`INSERT INTO email_in_request.senders VALUES (${process.pid}) ON CONFLICT DO NOTHING`;
    await tx.unsafe(`
      CREATE OR REPLACE FUNCTION email_in_request.hold_creation_emails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF json_typeof(NEW.payload) = 'array'
          AND NEW.task_id = (SELECT id FROM graphile_worker._private_tasks WHERE identifier = 'send_email') THEN
          IF EXISTS (SELECT 1 FROM json_array_elements(NEW.payload) AS p (entry)
              JOIN registration_events e ON e.id = (p.entry ->> 'eventId')::bigint
              WHERE e.kind IN ('enrolled', 'waitlisted')) THEN
            NEW.run_at := greatest(NEW.run_at, now() + interval '${LEAVE_TO_REQUEST}');
          END IF;
        END IF;
        RETURN NEW;
      END $$`);
    // One claim per creation event: two requests holding one registration's 201 (an
    // Idempotency-Key replay while the first still sends) never both send its email.
    await tx`CREATE TABLE IF NOT EXISTS email_in_request.claims (event_id bigint PRIMARY KEY)`;
    await tx`DROP TRIGGER IF EXISTS hold_creation_emails ON graphile_worker._private_jobs`;
    await tx`CREATE TRIGGER hold_creation_emails BEFORE INSERT ON graphile_worker._private_jobs
      FOR EACH ROW EXECUTE FUNCTION email_in_request.hold_creation_emails()`;
  });
}

/**
 * Drops the hold once no other HTTP worker sends: the first worker to stop would otherwise take
 * the claims table from under the requests another one is still answering. A worker killed
 * without stopping has no connection left (its pool's application_name carries its pid), so it
 * does not keep the hold alive.
 */
async function releaseCreationEmails(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('email_in_request'))`;
    await tx`
      DELETE FROM email_in_request.senders s
      WHERE s.pid = ${process.pid} OR NOT EXISTS (
        SELECT 1 FROM pg_stat_activity a WHERE a.application_name = ${SENDER_APPLICATION_NAME} || s.pid)`;
    const [left] = await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM email_in_request.senders`;
    if (left!.n === 0) await tx`DROP SCHEMA email_in_request CASCADE`;
  });
}

/**
 * Claims the email job holding the registration's creation event (not its newest event: a
 * reminder may have committed since the 201) and returns that event, or undefined when the job
 * is running or done, or another request claimed it. graphile-worker takes only unlocked jobs
 * with run_at <= now(), under SKIP LOCKED: either this UPDATE moves run_at first, or it finds the
 * job locked and leaves it; the claims row lets one request through per event.
 */
async function claimCreationEmail(sql: Sql, registrationId: string): Promise<string | undefined> {
  const [row] = await sql<{ event_id: string }[]>`
    WITH creation AS (
      SELECT id FROM registration_events
      WHERE registration_id = ${registrationId} AND kind IN ('enrolled', 'waitlisted') ORDER BY id LIMIT 1
    ), claimed AS (
      INSERT INTO email_in_request.claims (event_id) SELECT id FROM creation ON CONFLICT DO NOTHING RETURNING event_id
    )
    UPDATE graphile_worker._private_jobs j
    SET run_at = greatest(j.run_at, now() + ${HOLD_WHILE_SENDING}::interval)
    FROM claimed c, graphile_worker._private_tasks t
    WHERE t.id = j.task_id AND t.identifier = 'send_email' AND j.locked_at IS NULL
      AND j.payload::jsonb @> jsonb_build_array(jsonb_build_object('eventId', c.event_id))
    RETURNING c.event_id::text AS event_id`;
  return row?.event_id;
}

type Sender = { send(registrationId: string, manageToken: string): Promise<void>; stop(): Promise<void> };

/** Its own pool, send window and SMTP transport (up to EMAIL_CONCURRENCY connections), from the service's settings. */
async function startSender(config: Config): Promise<Sender> {
  if (config.databaseUrl === undefined) throw new Error('the email-in-request plug-in needs DATABASE_URL (an HTTP worker has it from its supervisor)');
  const logger = createLogger(config, 'email-in-request');
  const sql = connectDatabase(config.databaseUrl, { max: Math.min(config.emailConcurrency, EMAIL_DATABASE_CONNECTIONS) + 1, applicationName: `${SENDER_APPLICATION_NAME}${process.pid}` });
  await holdCreationEmails(sql);
  // A request claims its job only once a connection is its turn, so the claim covers the
  // exchange and not the wait.
  const limit = createSendWindow({ ceiling: config.emailConcurrency });
  const transport = createConfiguredTransport(config, sql, limit);
  const deliverEmail = createEmailDelivery({ sql, transport, from: config.mailFrom, publicUrl: config.publicUrl, logger });
  logger.warn('email-in-request plug-in: every registration\'s answer waits for its email (the bench\'s demonstration)');
  return {
    async send(registrationId, manageToken) {
      try {
        await limit(async () => {
          const eventId = await claimCreationEmail(sql, registrationId);
          // 'sent' and 'failed' are recorded, so the job skips them; a temporary failure throws.
          if (eventId !== undefined) await deliverEmail(eventId, manageToken, { attempts: 1, maxAttempts: Number.POSITIVE_INFINITY });
        });
      } catch (error) {
        logger.warn({ err: error, registrationId }, 'email not sent inside its request; its job sends it');
      }
    },
    async stop() {
      await releaseCreationEmails(sql).catch((error: unknown) => logger.warn({ err: error }, 'could not drop the hold on creation emails'));
      await transport.close();
      await sql.end({ timeout: 5 });
    },
  };
}

function isRegisterRoute(route: RouteOptions): boolean {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  return route.url === '/register' && methods.includes('POST');
}

/** Adds, to POST /register only, an onSend hook that sends a 201's email before the answer goes out. */
export function attachEmailInRequest(app: FastifyInstance, config: Config): void {
  let sender: Sender | undefined;
  app.addHook('onRoute', function addEmailToRegister(route) {
    if (!isRegisterRoute(route)) return;
    const existing = route.onSend === undefined ? [] : Array.isArray(route.onSend) ? route.onSend : [route.onSend];
    route.onSend = [...existing, async function sendEmailBeforeAnswer(_request: FastifyRequest, reply: FastifyReply, payload: unknown) {
      if (reply.statusCode === 201 && typeof payload === 'string') {
        const { id, manageToken } = JSON.parse(payload) as { id: string; manageToken: string };
        await sender?.send(id, manageToken);
      }
      return payload;
    }];
  });
  app.addHook('onReady', async function startEmailInRequest() {
    sender = await startSender(config);
  });
  // Fastify runs onClose once the requests in flight are answered.
  app.addHook('onClose', async function stopEmailInRequest() {
    await sender?.stop();
  });
}

/** Attaches the plug-in to every Fastify instance created from now on; returns the unsubscribe. */
export function sendEmailsInRequests(config: () => Config): () => void {
  const onInitialization = (message: unknown) => attachEmailInRequest((message as { fastify: FastifyInstance }).fastify, config());
  subscribe(FASTIFY_INITIALIZATION, onInitialization);
  return () => unsubscribe(FASTIFY_INITIALIZATION, onInitialization);
}
