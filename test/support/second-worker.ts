// A second in-process server on a pool of its own: its own group commit and full-course memory,
// as a second worker process has. For suites that race two workers against one database.
import { connectDatabase } from '../../src/db/database.ts';
import { startTestServer, type TestServer } from './http.ts';
import type { Stack } from './stack.ts';

export type SecondWorker = { server: TestServer; close(): Promise<void> };

/**
 * Started on the stack's database, and closed in the stack's stop before that database is
 * dropped: a pool whose connections the drop ends may never end.
 */
export async function startSecondWorker(stack: Pick<Stack, 'db' | 'onStop'>): Promise<SecondWorker> {
  const pool = connectDatabase(stack.db.url, { max: 10, applicationName: 'registrar-test-second' });
  const server = await startTestServer(pool);
  const worker = {
    server,
    async close() {
      await server.close();
      await pool.end({ timeout: 5 });
    },
  };
  stack.onStop('close the second worker', () => worker.close());
  return worker;
}
