// Entry point: the same file runs as the supervisor (cluster primary) and as each HTTP worker.
import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config.ts';
import { runHttpWorker } from './runtime/http-worker.ts';
import { runJobWorker } from './runtime/job-worker.ts';
import { startHeartbeat } from './runtime/liveness.ts';
import { runSupervisor } from './runtime/supervisor.ts';

try {
  const config = loadConfig();
  // Every worker tells the supervisor it is alive from the start: one that hangs is replaced.
  if (!cluster.isPrimary) startHeartbeat();
  if (cluster.isPrimary) await runSupervisor(config);
  else if (config.processRole === 'jobs') await runJobWorker(config);
  else await runHttpWorker(config);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Configuration error: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`Registrar could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
