// A TCP port on 127.0.0.1 that was free a moment ago: for the embedded PostgreSQL, the bench
// and the tests. (Another process could take it before the caller binds; callers retry or fail.)
import { createServer } from 'node:net';

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
