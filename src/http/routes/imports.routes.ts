// Bulk import routes (admin): upload a CSV (streamed to storage, answered 202 at once), follow
// its progress, list imports newest first.
import { Readable } from 'node:stream';
import Type from 'typebox';
import { acceptImport, getImport, getImports } from '../../domain/imports.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { problem, sendProblem } from '../problem.ts';
import { problemResponses } from '../schemas/common.schemas.ts';
import { LimitQuery } from '../schemas/delivery.schemas.ts';
import { Import, ImportParams, toImport } from '../schemas/import.schemas.ts';

export type ImportLimits = { dataDir: string; maxBytes: number };

export function registerImportRoutes(app: App, { sql, auth }: RouteDeps, limits: ImportLimits): void {
  const security = [{ bearer: [] }];
  const tags = ['imports'];

  // POST /imports takes text/csv and nothing else, and no other route takes text/csv: the parser
  // lives in this encapsulated scope, whose JSON parser is removed (a JSON body here is 415).
  // The body stays a stream: acceptImport writes it to disk as it arrives, within maxBytes.
  void app.register(async function csvUpload(scope) {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('text/csv', function passStream(_request, payload, done) {
      done(null, payload);
    });

    scope.post('/imports', {
      onRequest: auth.requireAdmin,
      schema: {
        tags, security,
        summary: 'Import registrations from a CSV with the header name,email,course (admin)',
        description: 'Content-Type: text/csv. Each row is registered with the rules and emails of POST /register. Answers 202 at once; follow GET /imports/{id}.',
        response: { 202: Import, ...problemResponses(400, 401, 413, 415, 503) },
      },
    }, async function createImportRoute(request, reply) {
      // A text/csv body arrives here as a stream (this scope's only parser: any other type is
      // 415 before the handler runs); a request without a body has none to store.
      const upload = request.body;
      if (!(upload instanceof Readable)) {
        const csv = /^text\/csv\b/i.test(request.headers['content-type'] ?? '');
        return csv
          ? sendProblem(reply, problem(400, 'validation', 'The file is empty: line 1 must be a header with the columns name,email,course'))
          : sendProblem(reply, problem(415, 'unsupported-media-type', 'An import is a CSV file: send it with Content-Type: text/csv'));
      }
      const imported = await acceptImport(sql, limits, upload);
      return reply.code(202).header('location', `/imports/${imported.id}`).send(toImport(imported));
    });
  });

  app.get('/imports/:id', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'An import\'s progress and its first 100 row errors (admin)', params: ImportParams, response: { 200: Import, ...problemResponses(400, 401, 404) } },
  }, async function getImportRoute(request) {
    return toImport(await getImport(sql, request.params.id));
  });

  app.get('/imports', {
    onRequest: auth.requireAdmin,
    schema: { tags, security, summary: 'Imports, newest first (admin)', querystring: LimitQuery, response: { 200: Type.Array(Import), ...problemResponses(400, 401) } },
  }, async function listImportsRoute(request) {
    return (await getImports(sql, request.query.limit ?? 100)).map(toImport);
  });
}
