import { Router } from 'express';
import { z } from 'zod';
import { defineOperation, route } from '../http/api-operation.ts';
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

const checkSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('up'), kind: z.string().meta({ description: '`postgres`, `pglite`, `redis` or `memory`.' }) }),
  z.object({ status: z.literal('down'), kind: z.string(), message: z.string() }),
]);
type Check = z.infer<typeof checkSchema>;
const checksSchema = z.object({ database: checkSchema, ephemeral: checkSchema });

const TAG = 'Health';

export const livenessOperation = defineOperation({
  method: 'get',
  path: '/healthz',
  operationId: 'liveness',
  summary: 'The process is alive',
  tag: TAG,
  credentials: [],
  responses: { 200: { description: 'Alive.', body: z.object({ status: z.literal('ok') }) } },
});

export const readinessOperation = defineOperation({
  method: 'get',
  path: '/readyz',
  operationId: 'readiness',
  summary: 'The stores answer and the node is not draining',
  description: 'Each check gives up after 1.5 s. From the start of a shutdown it answers `503` with `draining: true`.',
  tag: TAG,
  credentials: [],
  responses: {
    200: { description: 'Ready.', body: z.object({ status: z.literal('ready'), checks: checksSchema }) },
    503: {
      description: 'Not ready: a store does not answer (named in `message`), or the node is shutting down.',
      body: z.union([
        z.object({ message: z.string(), status: z.literal(503), checks: checksSchema }),
        z.object({ message: z.string(), status: z.literal(503), draining: z.literal(true) }),
      ]),
      headers: { 'Retry-After': 'With a store down: seconds to wait.' },
    },
  },
});

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

  route(router, livenessOperation, [], (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.all('/healthz', methodNotAllowed(['GET']));

  route(router, readinessOperation, [], async (req, res) => {
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
