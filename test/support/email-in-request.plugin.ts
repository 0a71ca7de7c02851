// The --import entry of the email-in-request plug-in (email-in-request.ts): every process of the
// service loads it, and it acts only where a Fastify instance is created (the HTTP workers).
import { isMainThread } from 'node:worker_threads';

// An import thread creates no Fastify instance; the settings are read when one is created.
if (isMainThread) {
  const [{ loadConfig }, { sendEmailsInRequests }] = await Promise.all([import('../../src/config.ts'), import('./email-in-request.ts')]);
  sendEmailsInRequests(() => loadConfig());
}
