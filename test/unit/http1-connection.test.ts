// The bench's lean HTTP/1.1 connection, against a real Node HTTP server: keep-alive, framing by
// Content-Length, and every way an answer can go wrong failing only its own request.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Http1Connection } from '../support/http1-connection.ts';

let baseUrl: string;
const sockets = new Set<unknown>();
const server = createServer((request: IncomingMessage, response: ServerResponse) => {
  sockets.add(request.socket);
  let body = '';
  request.setEncoding('utf8');
  request.on('data', (chunk: string) => { body += chunk; });
  request.on('end', () => {
    switch (request.url) {
      case '/echo': {
        const payload = JSON.stringify({ received: JSON.parse(body), connections: sockets.size });
        response.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        return response.end(payload);
      }
      case '/chunked':
        response.writeHead(200, { 'content-type': 'application/json' }); // no length: chunked
        response.write('{"a":');
        return response.end('1}');
      case '/close': {
        const payload = '{"closing":true}';
        response.writeHead(503, { 'content-type': 'application/json', 'content-length': payload.length, connection: 'close' });
        return response.end(payload);
      }
      case '/silent':
        return; // never answers
      default:
        response.writeHead(404, { 'content-length': 0 });
        return response.end();
    }
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('requests go one after another over one kept-alive connection, bodies in UTF-8 both ways', async () => {
  const connection = new Http1Connection(baseUrl, 5_000);
  const before_ = sockets.size;
  for (const name of ['Zoë', 'Łukasz', '王小明']) {
    const answer = await connection.post('/echo', JSON.stringify({ name }));
    assert.equal(answer.status, 201);
    assert.equal(JSON.parse(answer.body).received.name, name);
    assert.equal(JSON.parse(answer.body).connections, before_ + 1, 'the same connection each time');
  }
  connection.close();
});

test('an answer it cannot frame, a server that closes, or silence fail only their own request', async () => {
  const connection = new Http1Connection(baseUrl, 300);
  await assert.rejects(connection.post('/chunked', '{}'), /unexpected answer: http\/1\.1 200/);
  assert.equal((await connection.post('/echo', '{"n":1}')).status, 201, 'a new connection after the failure');

  const closing = await connection.post('/close', '{}');
  assert.deepEqual([closing.status, closing.body], [503, '{"closing":true}'], 'the answer before the close is kept');
  assert.equal((await connection.post('/echo', '{"n":2}')).status, 201, 'reconnected');

  const started = performance.now();
  await assert.rejects(connection.post('/silent', '{}'), /no answer within 300 ms/);
  assert.ok(performance.now() - started >= 290);
  assert.equal((await connection.post('/echo', '{"n":3}')).status, 201, 'and after a timeout');

  await assert.rejects(Promise.all([connection.post('/silent', '{}'), connection.post('/echo', '{}')]), /one request at a time/);
  connection.close();
});
