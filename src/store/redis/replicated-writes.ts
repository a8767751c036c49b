// Writes that end a credential (a revocation, a logout) must outlive a failover. Redis replicates
// asynchronously: a deletion a master acknowledged just before it died may never reach the replica
// promoted in its place, and the credential would be back. These writes are acknowledged only once
// a replica has them (WAIT), over a connection of their own: WAIT holds its connection until a
// replica answers, and introspection must not queue behind it. Where the master has no replica
// there is nothing to wait for, and no failover can lose the write (docs/design/redis-store.md).
import { StoreUnavailableError } from '../../shared/errors.ts';
import { run, type Connection, type RedisContext } from './connection.ts';

export interface ReplicatedWrites {
  /** How many replicas the master reported at the last heartbeat (0 until then). */
  readonly replicas: number;
  /** INFO replication on the connection: the heartbeat's probe, which keeps `replicas` current. */
  probe(): Promise<void>;
  /**
   * Runs `write` on the connection; where the master has replicas, resolves once one of them has
   * it, and otherwise throws StoreUnavailableError (the caller may retry: these writes repeat
   * harmlessly). Without replicas, the write runs on `fallback` (the commands connection) instead.
   */
  run<T>(operation: string, write: (client: Connection['client']) => Promise<T>, fallback: () => Promise<T>): Promise<T>;
}

/** connected_slaves from INFO replication. */
export function connectedReplicas(info: string): number {
  const match = /^connected_slaves:(\d+)/m.exec(info);
  return match ? Number(match[1]) : 0;
}

/** `waitMs`: how long a replica may take to confirm, below the command timeout. */
export function createReplicatedWrites(context: RedisContext, connection: Connection, waitMs: number): ReplicatedWrites {
  const { client } = connection;
  let replicas = 0;
  const readReplicas = async () => {
    replicas = connectedReplicas(await run(context, 'INFO replication', connection, () => client.info('replication')));
    return replicas;
  };
  return {
    get replicas() {
      return replicas;
    },
    async probe() {
      await readReplicas();
    },
    async run(operation, write, fallback) {
      if (replicas === 0) return fallback();
      const result = await run(context, operation, connection, () => write(client));
      const confirmed = await run(context, 'WAIT', connection, () => client.wait(1, waitMs));
      // No replica confirmed: unless none is attached any more, a failover could undo the write.
      if (confirmed >= 1 || (await readReplicas()) === 0) return result;
      throw new StoreUnavailableError('Redis', `no replica of Redis at ${context.server} confirmed ${operation} within ${waitMs} ms: a failover could undo it, so it is not acknowledged`);
    },
  };
}
