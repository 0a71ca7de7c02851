// The page behind the link in the waiting room's emails: a place's live position, then the
// Register button once admitted. Static files read once at start; the token stays in the URL
// fragment (never sent), and a strict Content-Security-Policy allows same-origin script only.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { App } from '../app.ts';
import { QueuePlaceParams } from '../schemas/queue.schemas.ts';

const PAGES = path.join(import.meta.dirname, '..', 'pages');
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function registerQueuePageRoutes(app: App): Promise<void> {
  const [html, js, css] = await Promise.all(['queue.html', 'queue.js', 'queue.css'].map((file) => readFile(path.join(PAGES, file), 'utf8')));
  const headers = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };

  app.get('/queue-page/queue.js', { schema: { hide: true } }, async function queueScript(_request, reply) {
    return reply.headers(headers).type('text/javascript; charset=utf-8').send(js);
  });
  app.get('/queue-page/queue.css', { schema: { hide: true } }, async function queueStyle(_request, reply) {
    return reply.headers(headers).type('text/css; charset=utf-8').send(css);
  });
  app.get('/queue/:id/page', { schema: { hide: true, params: QueuePlaceParams } }, async function queuePage(_request, reply) {
    return reply.headers(headers).type('text/html; charset=utf-8').send(html);
  });
}
