// A TCP port on 127.0.0.1 that was free a moment ago: for the embedded PostgreSQL, the bench
// and the tests. (Another process could take it before the caller binds; callers retry or fail.)
//
// The kernel may hand out a port that was just closed again, and two callers in one process that
// get the same port and start services at once both bind it: the HTTP workers bind with
// SO_REUSEPORT, so the kernel then spreads one port's connections over two services (seen in CI:
// a test's requests answered by another test's service). So a port is never handed out twice
// by one process.
import { createServer } from 'node:net';

const handedOut = new Set<number>();

function listenOnce(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function findFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await listenOnce();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port not handed out before');
}
