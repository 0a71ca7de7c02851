// Emails yield to a rush. Sending an email costs CPU (composing it, SMTP, two small queries), on
// the same cores as the HTTP workers and PostgreSQL: measured on 2 cores, sending the emails of a
// rush while it lasts took about half the registrations' throughput. A student needs the answer
// now and the email seconds later, so while the HTTP workers are busy (many requests in flight,
// as the supervisor's cluster view reports every second) the job worker sends only a few emails
// at a time, and goes back to EMAIL_CONCURRENCY when the rush is over. Nothing is dropped: the
// jobs wait in the queue. Outside a cluster (tests) nothing changes.
import cluster from 'node:cluster';
import type { ClusterView } from '../observability/cluster-state.ts';
import type { Limiter } from './job-entries.ts';

/** HTTP requests in flight across the workers from which the service counts as in a rush. */
export const RUSH_IN_FLIGHT = 32;
/** Emails in flight during a rush. */
export const RUSH_EMAIL_CONCURRENCY = 2;

export function yieldEmailsToRushes(limiter: Limiter, normalConcurrency: number, onChange: (rush: boolean) => void): () => void {
  if (!cluster.isWorker) return () => {};
  let rush = false;
  const onMessage = (message: { type?: string; view?: ClusterView }) => {
    if (message?.type !== 'cluster-state' || !message.view) return;
    const inFlight = message.view.workers.filter((w) => w.role === 'http' && !w.silent).reduce((sum, w) => sum + w.inFlight, 0);
    const now = inFlight >= RUSH_IN_FLIGHT;
    if (now === rush) return;
    rush = now;
    limiter.setLimit(rush ? Math.min(RUSH_EMAIL_CONCURRENCY, normalConcurrency) : normalConcurrency);
    onChange(rush);
  };
  process.on('message', onMessage);
  return () => process.off('message', onMessage);
}
