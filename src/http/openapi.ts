// The OpenAPI document's options, in one place so route files declare only what is theirs: each
// operation's operationId is its handler's name (createCourseRoute -> createCourse), a route that
// declares no security is public (`security: []`), and the client errors an operation can answer
// by what it declares (a credential, a schema for its input) or by its method (a body) are listed
// once here rather than on each route.
import type { SwaggerOptions } from '@fastify/swagger';
import { Problem } from './schemas/common.schemas.ts';

export type OpenApiOptions = {
  /** Where clients reach the API (PUBLIC_URL); unset: "/", the origin the document came from. */
  publicUrl?: string | undefined;
};

type Schema = Record<string, unknown> & { response?: Record<string, unknown> };

/** A problem answer documented, without declaring it on the route (the route's serializer is unchanged). */
function documented(statuses: number[], schema: Schema): Schema {
  const response = { ...schema.response };
  for (const status of statuses) if (!(status in response)) response[status] = Problem;
  return { ...schema, response };
}

const problemAnswer = { description: 'RFC 9457 problem details', content: { 'application/problem+json': { schema: Problem } } };

export function openApiOptions(options: OpenApiOptions): SwaggerOptions {
  const seen = new Map<string, string>();
  return {
    openapi: {
      info: {
        title: 'Registrar',
        version: '0.1.0',
        description: 'Registration for limited-seat courses. Errors are RFC 9457 problem details.',
        // package.json: "private": the code is not published under any licence.
        license: { name: 'UNLICENSED (private, all rights reserved)' },
      },
      servers: [{ url: options.publicUrl ?? '/' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, or on a registration\'s own routes its manageToken, on a queue place\'s its queueToken' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN (clients on loopback need none)' },
        },
      },
    },
    // Route URLs are never under the servers' path: a proxy that serves the API under a prefix strips it.
    stripBasePath: false,
    transform: function documentRoute({ schema, url, route }) {
      let doc: Schema = { ...(schema as Schema | undefined) };
      const routeMethods = Array.isArray(route.method) ? route.method : [route.method];
      const methods = routeMethods.join(' ');
      const name = route.handler.name.replace(/Route$/, '');
      // An unnamed handler, or a name taken by another route: the method and path name it.
      const fallback = `${methods} ${url}`.toLowerCase().replace(/[^a-z0-9]+(.)?/g, (_, next: string | undefined) => (next ?? '').toUpperCase());
      const key = `${methods} ${url}`;
      const free = name !== '' && (seen.get(name) ?? key) === key;
      const operationId = (doc['operationId'] as string | undefined) ?? (free ? name : fallback);
      seen.set(operationId, key);
      doc['operationId'] = operationId;
      doc['security'] ??= [];
      // A credential that is missing or wrong is 401, and wrong guesses (on the manage-token
      // routes, any requests) over the client's budget are 429 (rate-limit.ts); input that fails
      // its schema is 400 (no schema, nothing to fail: that input is not read); a body over the
      // limit is 413, of a type the route does not take 415. Fastify reads a body sent with any
      // method but GET and HEAD, whether the route uses it or not (a DELETE with a text/plain
      // body is 415).
      if ((doc['security'] as unknown[]).length > 0) doc = documented([401, 429], doc);
      if (['params', 'querystring', 'headers', 'body'].some((part) => doc[part] !== undefined)) doc = documented([400], doc);
      if (routeMethods.some((method) => method !== 'GET' && method !== 'HEAD')) doc = documented([413, 415], doc);
      // A route that declares no success answer (a CSV or HTML one, not serialized by a schema)
      // keeps the plain 200 the document gives a route that declares no answers at all (type
      // 'null': the document then shows no JSON body for it).
      if (doc.response !== undefined && !Object.keys(doc.response).some((status) => /^[23]/.test(status))) {
        doc.response = { 200: { type: 'null', description: 'Default Response' }, ...doc.response };
      }
      // Problems are sent as application/problem+json (RFC 9457), whatever JSON the route sends.
      if (doc.response !== undefined) {
        doc.response = Object.fromEntries(Object.entries(doc.response).map(([status, answer]) => [status, answer === Problem ? problemAnswer : answer]));
      }
      return { schema: doc as typeof schema, url };
    },
  };
}
