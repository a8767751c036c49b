import { Router } from 'express';
import type { Database } from '../store/sql/database.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../shared/errors.ts';

export interface HealthDependencies {
  database: Pick<Database, 'ping' | 'kind'>;
  ephemeral: Pick<EphemeralStore, 'ping' | 'kind'>;
  /** How long a dependency may take to answer before it counts as down. */
  checkTimeoutMs?: number;
  /** Whether the node is draining (shutting down): then it is not ready, whatever its stores say. */
  draining?: () => boolean;
}

type Check = { status: 'up'; kind: string } | { status: 'down'; kind: string; message: string };

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const LABELS: Record<string, string> = { postgres: 'PostgreSQL', pglite: 'the embedded database', redis: 'Redis', memory: 'the in-process store' };

/**
 * GET /healthz: the process is alive. GET /readyz: its stores answer (503 naming the one that does
 * not), and it is not draining (503 as soon as the shutdown begins, for a balancer whose health
 * check reaches it on a connection it already had).
 */
export function createHealthRoutes({ database, ephemeral, checkTimeoutMs = 1500, draining = () => false }: HealthDependencies): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.all('/healthz', methodNotAllowed(['GET']));

  router.get('/readyz', async (req, res) => {
    if (draining()) {
      res.set('Cache-Control', 'no-store').status(503).json({ message: 'Not ready: shutting down.', status: 503, draining: true });
      return;
    }
    const check = async (store: { ping(): Promise<void>; kind: string }): Promise<Check> => {
      try {
        await withTimeout(store.ping(), checkTimeoutMs);
        return { status: 'up', kind: store.kind };
      } catch (error) {
        req.log.warn({ store: store.kind, reason: (error as Error).message }, 'readiness check failed');
        return { status: 'down', kind: store.kind, message: `${LABELS[store.kind] ?? store.kind} is unreachable` };
      }
    };
    const [db, eph] = await Promise.all([check(database), check(ephemeral)]);
    const checks = { database: db, ephemeral: eph };
    const down = [db, eph].filter((c): c is Extract<Check, { status: 'down' }> => c.status === 'down');
    res.set('Cache-Control', 'no-store');
    if (down.length === 0) {
      res.json({ status: 'ready', checks });
      return;
    }
    res.set('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
    res.status(503).json({ message: `Not ready: ${down.map((c) => c.message).join('; ')}.`, status: 503, checks });
  });
  router.all('/readyz', methodNotAllowed(['GET']));

  return router;
}
