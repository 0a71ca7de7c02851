// A second in-process server on a pool of its own: its own group commit and full-course memory,
// as a second worker process has. For suites that race two workers against one database.
import { connectDatabase } from '../../src/db/database.ts';
import { startTestServer, type TestServer } from './http.ts';

export type SecondWorker = { server: TestServer; close(): Promise<void> };

export async function startSecondWorker(databaseUrl: string): Promise<SecondWorker> {
  const pool = connectDatabase(databaseUrl, { max: 10, applicationName: 'registrar-test-second' });
  const server = await startTestServer(pool);
  return {
    server,
    async close() {
      await server.close();
      await pool.end({ timeout: 5 });
    },
  };
}
