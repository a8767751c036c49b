// Writes that end a credential (a revocation, a logout) must outlive a failover. Redis replicates
// asynchronously: a deletion a master acknowledged just before it died may never reach the replica
// promoted in its place, and the credential would be back. These writes are acknowledged only once
// a replica has them (WAIT), over a connection of their own: WAIT holds its connection until a
// replica answers, and introspection must not queue behind it. Where the master has no replica
// there is nothing to wait for, and no failover can lose the write (docs/design/redis-store.md).
import type { ChainableCommander } from 'ioredis';
import { StoreUnavailableError } from '../../shared/errors.ts';
import { run, type Connection, type RedisContext } from './connection.ts';

export interface ReplicatedWrites {
  /**
   * Runs the write `add` puts in a pipeline (commands on keys of one slot, `key` among them) and
   * resolves with its reply once a replica of the master that ran it has it too (at once where that
   * master has no replica). Throws StoreUnavailableError when no replica confirms within the wait:
   * the master ran the write, and the caller may run it again (these writes repeat harmlessly).
   */
  run<T>(operation: string, key: string, add: (pipeline: ChainableCommander) => void): Promise<T>;
}

/** connected_slaves from INFO replication. */
export function connectedReplicas(info: string): number {
  const match = /^connected_slaves:(\d+)/m.exec(info);
  return match ? Number(match[1]) : 0;
}

/**
 * `waitMs`: how long a replica may take to confirm, below the command timeout. Each pipeline names
 * `key`, so on a cluster all of them go to the master of its slot, over the same connection (WAIT
 * counts the writes of its own connection), and the replicas counted are that master's.
 */
export function createReplicatedWrites(context: RedisContext, connection: Connection, waitMs: number): ReplicatedWrites {
  const { client } = connection;
  const pipelined = (operation: string, add: (pipeline: ChainableCommander) => void) =>
    run(context, operation, connection, async () => {
      const pipeline = client.pipeline();
      add(pipeline);
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([error]) => error);
      if (failed) throw failed[0];
      return replies.map(([, reply]) => reply);
    });
  return {
    async run<T>(operation: string, key: string, add: (pipeline: ChainableCommander) => void): Promise<T> {
      const replies = await pipelined(operation, (pipeline) => {
        add(pipeline);
        pipeline.info('replication');
      });
      const result = replies[0] as T;
      if (connectedReplicas(String(replies.at(-1))) === 0) return result;
      const [, confirmed, info] = await pipelined('WAIT', (pipeline) => pipeline.pttl(key).wait(1, waitMs).info('replication'));
      // No replica confirmed: unless none is attached any more, a failover could undo the write.
      if (Number(confirmed) >= 1 || connectedReplicas(String(info)) === 0) return result;
      throw new StoreUnavailableError('Redis', `no replica of Redis at ${context.server} confirmed ${operation} within ${waitMs} ms: a failover could undo it, so it is not acknowledged`);
    },
  };
}
