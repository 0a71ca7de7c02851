// A page of static files (src/http/pages/<name>.html, .js, .css), read once at start and served
// with a strict Content-Security-Policy: same-origin script, style and fetch only, no inline
// script, no framing. The pages that take a token read it from the URL fragment, never sent.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TSchema } from 'typebox';
import type { App } from './app.ts';

const PAGES = path.join(import.meta.dirname, 'pages');
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const HEADERS = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };

export type StaticPage = {
  /** The files' base name in src/http/pages. */
  name: string;
  /** Where the page is served, e.g. /manage/:id, with the schema of its parameters. */
  url: string;
  params: TSchema;
  /** Where its .js and .css are served: `${assets}/${name}.js`, as the page's HTML links them. */
  assets: string;
};

export async function registerStaticPage(app: App, page: StaticPage): Promise<void> {
  const [html, js, css] = await Promise.all(['html', 'js', 'css'].map((ext) => readFile(path.join(PAGES, `${page.name}.${ext}`), 'utf8')));
  app.get(`${page.assets}/${page.name}.js`, { schema: { hide: true } }, async function pageScript(_request, reply) {
    return reply.headers(HEADERS).type('text/javascript; charset=utf-8').send(js);
  });
  app.get(`${page.assets}/${page.name}.css`, { schema: { hide: true } }, async function pageStyle(_request, reply) {
    return reply.headers(HEADERS).type('text/css; charset=utf-8').send(css);
  });
  app.get(page.url, { schema: { hide: true, params: page.params } }, async function pageHtml(_request, reply) {
    return reply.headers(HEADERS).type('text/html; charset=utf-8').send(html);
  });
}
