// Emails yield to a rush. Sending an email costs CPU (composing it, SMTP, two small queries, and
// the SMTP server's own work when it runs here), on the same cores as the HTTP workers and
// PostgreSQL: measured on 2 cores, emails sent at full speed during a rush took a third of the
// machine (about 2 ms of CPU per email, all processes counted). A student needs the answer now
// and the email seconds later, so while the HTTP workers are busy the job worker sends one email
// at a time, at most RUSH_EMAILS_PER_SECOND, and goes back to the send window (send-window.ts,
// up to EMAIL_CONCURRENCY) when the rush is over. Nothing is dropped: the jobs wait in the queue, and a rush that lasts still gets its
// emails out, slowly. Outside a cluster (tests) nothing changes.
import cluster from 'node:cluster';
import type { ClusterView } from '../observability/cluster-state.ts';
import type { Limiter } from './job-entries.ts';

/** HTTP requests in flight across the workers from which the service counts as in a rush. */
export const RUSH_IN_FLIGHT = 32;
/**
 * Requests per second across the workers from which the service counts as in a rush: a snapshot
 * of requests in flight can miss a rush whose answers are fast, the count of the last seconds
 * cannot.
 */
export const RUSH_REQUESTS_PER_SECOND = 500;
/** Emails started per second during a rush (one at a time). */
export const RUSH_EMAILS_PER_SECOND = 20;

/** Whether the cluster, as the supervisor last saw it, is in a rush. */
export function isRush(view: ClusterView): boolean {
  const http = view.workers.filter((w) => w.role === 'http' && !w.silent);
  const inFlight = http.reduce((sum, w) => sum + w.inFlight, 0);
  // The last two whole seconds: workers report twice a second, so the last one may be partial.
  const recent = view.history.slice(-2).reduce((most, point) => Math.max(most, point.requests), 0);
  return inFlight >= RUSH_IN_FLIGHT || recent >= RUSH_REQUESTS_PER_SECOND;
}

/** `normalConcurrency`: the limit outside a rush (for the send window, its ceiling: no cap on top of the window). */
export function yieldEmailsToRushes(limiter: Limiter, normalConcurrency: number, onChange: (rush: boolean) => void): () => void {
  if (!cluster.isWorker) return () => {};
  let rush = false;
  const onMessage = (message: { type?: string; view?: ClusterView }) => {
    if (message?.type !== 'cluster-state' || !message.view) return;
    const now = isRush(message.view);
    if (now === rush) return;
    rush = now;
    if (rush) limiter.setLimit(1, 1000 / RUSH_EMAILS_PER_SECOND);
    else limiter.setLimit(normalConcurrency);
    onChange(rush);
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
