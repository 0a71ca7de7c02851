// Term routes: anyone may read terms; only the admin creates and changes them.
import Type from 'typebox';
import { changeTerm, createTerm, getTerm, getTerms } from '../../domain/terms.service.ts';
import type { App, RouteDeps } from '../app.ts';
import { NoQuery, problemResponses } from '../schemas/common.schemas.ts';
import { CreateTermBody, PatchTermBody, Term, TermParams, toTerm } from '../schemas/term.schemas.ts';

export function registerTermRoutes(app: App, { sql, auth }: RouteDeps): void {
  const admin = { onRequest: auth.requireAdmin, schema: { security: [{ bearer: [] }] } };

  app.post('/terms', {
    onRequest: admin.onRequest,
    schema: { ...admin.schema, tags: ['terms'], summary: 'Create a term (admin): its courses share a per-student limit', body: CreateTermBody, response: { 201: Term, ...problemResponses(400, 401, 409) } },
  }, async function createTermRoute(request, reply) {
    return reply.code(201).send(toTerm(await createTerm(sql, request.body)));
  });

  app.patch('/terms/:id', {
    onRequest: admin.onRequest,
    schema: { ...admin.schema, tags: ['terms'], summary: 'Change a term (admin); a lowered limit cancels nobody, it refuses new registrations until the student is under it', params: TermParams, body: PatchTermBody, response: { 200: Term, ...problemResponses(400, 401, 404) } },
  }, async function changeTermRoute(request) {
    return toTerm(await changeTerm(sql, request.params.id, request.body));
  });

  app.get('/terms', {
    schema: { tags: ['terms'], summary: 'List terms with their limits and courses', querystring: NoQuery, response: { 200: Type.Array(Term), ...problemResponses(400) } },
  }, async function listTermsRoute() {
    return (await getTerms(sql)).map(toTerm);
  });

  app.get('/terms/:id', {
    schema: { tags: ['terms'], summary: 'One term with its limit and courses', params: TermParams, response: { 200: Term, ...problemResponses(400, 404) } },
  }, async function getTermRoute(request) {
    return toTerm(await getTerm(sql, request.params.id));
  });
}
