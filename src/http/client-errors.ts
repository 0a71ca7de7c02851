// Errors Node's HTTP parser meets before there is a request for Fastify to route (headers over
// the size limit, a malformed request line, a request that timed out): answered as problems like
// every other error, in place of Fastify's own JSON, and the connection closed as Node does.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { problem } from './problem.ts';

function problemFor(code: string | undefined) {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return problem(431, 'headers-too-large', 'The request line and headers are over the 16 KiB this service reads');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return problem(408, 'request-timeout', 'The request did not arrive in time');
    default:
      return problem(400, 'validation', 'The request is not well-formed HTTP');
  }
}

export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection is gone: there is nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const answer = problemFor(error.code);
    const body = JSON.stringify(answer);
    socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
