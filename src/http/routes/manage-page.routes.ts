// The page behind the link in every email: see or cancel one's registration. Static files read
// once at start; a strict Content-Security-Policy (no inline script, same-origin only).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { App } from '../app.ts';
import { RegistrationParams } from '../schemas/registration.schemas.ts';

const PAGES = path.join(import.meta.dirname, '..', 'pages');
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export async function registerManagePageRoutes(app: App): Promise<void> {
  const [html, js, css] = await Promise.all(['manage.html', 'manage.js', 'manage.css'].map((file) => readFile(path.join(PAGES, file), 'utf8')));
  const headers = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };

  app.get('/manage/manage.js', { schema: { hide: true } }, async function manageScript(_request, reply) {
    return reply.headers(headers).type('text/javascript; charset=utf-8').send(js);
  });
  app.get('/manage/manage.css', { schema: { hide: true } }, async function manageStyle(_request, reply) {
    return reply.headers(headers).type('text/css; charset=utf-8').send(css);
  });
  app.get('/manage/:id', { schema: { hide: true, params: RegistrationParams } }, async function managePage(_request, reply) {
    return reply.headers(headers).type('text/html; charset=utf-8').send(html);
  });
}
