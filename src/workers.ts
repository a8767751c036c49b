import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { usesRedis } from './config/load.ts';
import type { Config } from './config/schema.ts';

/** What the supervisor sends a worker to make it drain and exit (main.ts listens for it). */
export const DRAIN_MESSAGE = 'tessera:drain';

/** How many server processes `http.workers` asks for: `auto` is one per core. */
export function workerCount(config: Config): number {
  return config.http.workers === 'auto' ? availableParallelism() : config.http.workers;
}

/**
 * Why these settings cannot run several workers, or null if they can. The embedded database
 * admits one process; the in-process ephemeral store (no Redis) would give each worker its own
 * sessions, counters and invalidations.
 */
export function workersRefusal(config: Config, count: number): string | null {
  if (count <= 1) return null;
  if (config.database.url === null) {
    return `TESSERA_WORKERS=${config.http.workers} needs PostgreSQL (DATABASE_URL): the embedded database admits one process only. Set DATABASE_URL, or run one worker.`;
  }
  if (!usesRedis(config)) {
    return `TESSERA_WORKERS=${config.http.workers} needs Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): without it, sessions and invalidations live in one process and cannot be shared between workers. Set one of them, or run one worker.`;
  }
  return null;
}

export interface RestartBackoff {
  /** A worker that ran at least this long before it died is restarted at once. */
  stableMs: number;
  /** The first delay after a worker died sooner than stableMs; doubled on each such death in a row. */
  initialMs: number;
  maxMs: number;
}

const DEFAULT_BACKOFF: RestartBackoff = { stableMs: 10_000, initialMs: 500, maxMs: 30_000 };

/** How long to wait before the next restart, given how many workers in a row died young. */
export function restartDelay(quickDeathsInARow: number, backoff: RestartBackoff = DEFAULT_BACKOFF): number {
  if (quickDeathsInARow === 0) return 0;
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** (quickDeathsInARow - 1));
}

/**
 * The primary of `TESSERA_WORKERS=N`: forks N workers (each runs main.ts, i.e. the whole server,
 * and node:cluster shares their listening port), serves nothing itself, restarts a worker that
 * dies (with a back-off when they keep dying young), and on SIGTERM/SIGINT tells every worker to
 * drain, then exits once all have exited: 0 if each exited cleanly, 1 if not or if some were
 * still running after the grace period (then they are killed).
 */
export function superviseWorkers(config: Config, logger: Logger, count: number, backoff: RestartBackoff = DEFAULT_BACKOFF): void {
  const startedAt = new Map<Worker, number>();
  let quickDeathsInARow = 0;
  let pendingRestarts = new Set<NodeJS.Timeout>();
  let stopping = false;
  let allClean = true;

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
    logger.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker started');
  };

  const finishIfDone = () => {
    if (stopping && startedAt.size === 0) {
      logger.info('every worker has exited; supervisor stopped');
      process.exit(allClean ? 0 : 1);
    }
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
    startedAt.delete(worker);
    if (stopping) {
      if (code !== 0) allClean = false;
      logger.info({ worker: worker.id, workerPid: worker.process.pid, code, signal }, 'worker exited');
      finishIfDone();
      return;
    }
    quickDeathsInARow = lived < backoff.stableMs ? quickDeathsInARow + 1 : 0;
    const delayMs = restartDelay(quickDeathsInARow, backoff);
    logger.error({ worker: worker.id, workerPid: worker.process.pid, code, signal, livedMs: lived, delayMs }, 'worker died; restarting it');
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      if (!stopping) fork();
    }, delayMs);
    pendingRestarts.add(timer);
  });

  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    for (const timer of pendingRestarts) clearTimeout(timer);
    pendingRestarts = new Set();
    logger.info({ signal, workers: startedAt.size }, 'shutting down: draining every worker');
    for (const worker of startedAt.keys()) {
      if (worker.isConnected()) worker.send(DRAIN_MESSAGE);
      else worker.process.kill('SIGTERM');
    }
    // Each worker drains for at most the grace, then closes its stores: a little more for that.
    const graceMs = config.http.shutdownGraceMs + 5_000;
    setTimeout(() => {
      logger.error({ graceMs, workers: startedAt.size }, 'workers still running after the grace period; killing them');
      for (const worker of startedAt.keys()) worker.process.kill('SIGKILL');
      process.exit(1);
    }, graceMs).unref();
    finishIfDone();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  logger.info({ workers: count }, 'supervisor started');
  for (let i = 0; i < count; i++) fork();
}
