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

/** What one step of a rolling restart does to the workers (the supervisor's, or a test's). */
export interface RollSteps<W> {
  /** Forks a replacement; resolves with it once it listens, or null if it exited or never listened. */
  startReplacement(): Promise<W | null>;
  /** Tells `worker` to drain; resolves once it has exited. */
  retire(worker: W): Promise<void>;
  /** Whether `worker` still runs (one that died meanwhile was restarted as usual, not rolled). */
  isRunning(worker: W): boolean;
  /** Whether the supervisor is shutting down, which ends the roll. */
  isStopping(): boolean;
}

export type RollOutcome = { outcome: 'done' | 'stopping'; replaced: number } | { outcome: 'start-failed'; replaced: number; remaining: number };

/**
 * A rolling restart: for each of `workers` in turn, start a replacement and wait until it listens,
 * then retire the old one and wait until it has exited. At least as many workers as before listen
 * at every moment, so no connection is refused. A replacement that does not start stops the roll:
 * the old workers not yet replaced keep serving.
 */
export async function rollWorkers<W>(workers: readonly W[], steps: RollSteps<W>): Promise<RollOutcome> {
  let replaced = 0;
  for (const [index, worker] of workers.entries()) {
    if (steps.isStopping()) return { outcome: 'stopping', replaced };
    if (!steps.isRunning(worker)) continue;
    const replacement = await steps.startReplacement();
    if (steps.isStopping()) return { outcome: 'stopping', replaced };
    if (replacement === null) return { outcome: 'start-failed', replaced, remaining: workers.length - index };
    await steps.retire(worker);
    replaced++;
  }
  return { outcome: 'done', replaced };
}

/** How long a replacement worker may take to listen during a rolling restart before the roll stops. */
export const ROLL_START_TIMEOUT_MS = 120_000;

/**
 * The primary of `TESSERA_WORKERS=N`: forks N workers (each runs main.ts, i.e. the whole server,
 * and node:cluster shares their listening port), serves nothing itself, restarts a worker that
 * dies (with a back-off when they keep dying young), and on SIGTERM/SIGINT tells every worker to
 * drain, then exits once all have exited: 0 if each exited cleanly, 1 if not or if some were
 * still running after the grace period (then they are killed). On SIGHUP it replaces the workers
 * one at a time (rollWorkers), e.g. to take up a new configuration file or release.
 */
export function superviseWorkers(config: Config, logger: Logger, count: number, backoff: RestartBackoff = DEFAULT_BACKOFF): void {
  const startedAt = new Map<Worker, number>();
  let quickDeathsInARow = 0;
  let pendingRestarts = new Set<NodeJS.Timeout>();
  let stopping = false;
  let allClean = true;
  /** Workers a rolling restart has told to drain or given up on: not restarted when they exit. */
  const retiring = new Set<Worker>();
  let rolling = false;

  const identify = (worker: Worker) => ({ worker: worker.id, workerPid: worker.process.pid });
  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
    logger.info(identify(worker), 'worker started');
    return worker;
  };
  const exitOf = (worker: Worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve())));
  const drain = (worker: Worker) => {
    if (worker.isConnected()) worker.send(DRAIN_MESSAGE);
    else worker.process.kill('SIGTERM');
  };

  const rollSteps: RollSteps<Worker> = {
    startReplacement: () =>
      new Promise((resolve) => {
        const worker = fork();
        const settle = (listening: boolean, reason?: string) => {
          clearTimeout(timer);
          worker.off('listening', listened);
          worker.off('exit', exited);
          if (listening) {
            logger.info(identify(worker), 'rolling restart: the new worker listens');
            return resolve(worker);
          }
          // (A worker's own 'exit' comes before cluster's, whose handler then does not restart it.)
          retiring.add(worker);
          if (!stopping) logger.error({ ...identify(worker), reason }, 'rolling restart stopped: a new worker did not start; the workers not yet replaced keep serving');
          resolve(null);
        };
        const listened = () => settle(true);
        const exited = (code: number | null, signal: string | null) => settle(false, `it exited (code ${code}, signal ${signal}) before listening`);
        const timer = setTimeout(() => {
          settle(false, `it did not listen within ${ROLL_START_TIMEOUT_MS} ms`);
          worker.process.kill('SIGKILL');
        }, ROLL_START_TIMEOUT_MS);
        worker.once('listening', listened);
        worker.once('exit', exited);
      }),
    retire: (worker) => {
      retiring.add(worker);
      logger.info(identify(worker), 'rolling restart: draining an old worker');
      drain(worker);
      return exitOf(worker);
    },
    isRunning: (worker) => !worker.isDead() && startedAt.has(worker),
    isStopping: () => stopping,
  };

  const rollingRestart = async () => {
    if (stopping) return;
    if (rolling) {
      logger.warn('SIGHUP during a rolling restart: ignored, the restart under way goes on');
      return;
    }
    rolling = true;
    const workers = [...startedAt.keys()];
    logger.info({ workers: workers.length }, 'rolling restart: replacing the workers one at a time');
    try {
      const result = await rollWorkers(workers, rollSteps);
      if (result.outcome === 'done') logger.info({ replaced: result.replaced }, 'rolling restart done');
      else if (result.outcome === 'start-failed') logger.error({ replaced: result.replaced, notReplaced: result.remaining }, 'rolling restart stopped before its end');
    } finally {
      rolling = false;
    }
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
    // A worker a rolling restart retired or gave up on is not replaced here.
    if (retiring.delete(worker) || stopping) {
      if (stopping && code !== 0) allClean = false;
      logger.info({ ...identify(worker), code, signal }, 'worker exited');
      finishIfDone();
      return;
    }
    quickDeathsInARow = lived < backoff.stableMs ? quickDeathsInARow + 1 : 0;
    const delayMs = restartDelay(quickDeathsInARow, backoff);
    logger.error({ ...identify(worker), code, signal, livedMs: lived, delayMs }, 'worker died; restarting it');
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
    for (const worker of startedAt.keys()) drain(worker);
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
  process.on('SIGHUP', () => void rollingRestart());

  logger.info({ workers: count }, 'supervisor started');
  for (let i = 0; i < count; i++) fork();
}
