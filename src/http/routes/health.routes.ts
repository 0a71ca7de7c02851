// Liveness that means something: 200 only when this worker's database answers.
import Type from 'typebox';
import type { App, RouteDeps } from '../app.ts';
import { problem, sendProblem } from '../problem.ts';
import { NoQuery, problemResponses } from '../schemas/common.schemas.ts';

const HEALTH_TIMEOUT_MS = 2_000;

export function registerHealthRoutes(app: App, { sql }: RouteDeps): void {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Health: 200 when the database answers, else 503', querystring: NoQuery, response: { 200: Type.Object({ status: Type.Literal('ok'), pid: Type.Integer(), uptimeSeconds: Type.Number() }), ...problemResponses(400, 503) } },
  }, async function healthRoute(_request, reply) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), HEALTH_TIMEOUT_MS);
    });
    try {
      await Promise.race([sql`SELECT 1`, timeout]);
    } catch {
      return sendProblem(reply, problem(503, 'overloaded', 'The database does not answer'));
    } finally {
      clearTimeout(timer);
    }
    return { status: 'ok' as const, pid: process.pid, uptimeSeconds: Math.round(process.uptime()) };
  });
}
