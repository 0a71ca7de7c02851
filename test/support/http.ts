// The service over a real socket, and a small client for it.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import type { Sql } from '../../src/db/database.ts';
import { buildServer, type ServerOptions } from '../../src/http/server.ts';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export type Answer<T = any> = { status: number; headers: Headers; body: T };

/** `answer` is the problem+json answer `status` of type /problems/`slug`; `what` names it in a failure. */
export function assertProblem(answer: Answer, status: number, slug: string, what: string): void {
  assert.equal(answer.status, status, `${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/, what);
  assert.equal(answer.body.type, `/problems/${slug}`, what);
}

// Many sockets at once: the races under test need requests truly in flight together.
const dispatcher = new Agent({ connections: 512, pipelining: 1 });

export class Client {
  readonly baseUrl: string;
  readonly adminToken: string;
  constructor(baseUrl: string, adminToken = TEST_ADMIN_TOKEN) {
    this.baseUrl = baseUrl;
    this.adminToken = adminToken;
  }

  async request<T = any>(method: string, path: string, options: { body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers['authorization'] = `Bearer ${options.token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body, dispatcher } as RequestInit);
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    return { status: response.status, headers: response.headers, body: type.includes('json') && text ? JSON.parse(text) : text };
  }

  admin<T = any>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    return this.request<T>(method, path, { body, token: this.adminToken });
  }

  register(student: { name: string; email: string; course: string }, headers?: Record<string, string>): Promise<Answer> {
    return this.request('POST', '/register', { body: student, ...(headers ? { headers } : {}) });
  }
}

export type TestServer = { client: Client; url: string; close(): Promise<void> };

/** The service's options, over the tests' defaults (the test token, no logger, private webhooks allowed). */
export type TestServerOptions = Partial<Omit<ServerOptions, 'sql' | 'adminToken'>>;

export async function startTestServer(sql: Sql, options: TestServerOptions = {}): Promise<TestServer> {
  const app = await buildServer({ sql, adminToken: TEST_ADMIN_TOKEN, logger: false, allowPrivateWebhooks: true, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return { client: new Client(url), url, close: () => app.close() };
}
