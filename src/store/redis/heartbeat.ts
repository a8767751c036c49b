// Pings each connection so that one dead without its socket knowing (a frozen server, a dropped
// network path) is torn down and re-established, and a subscriber learns it missed messages. On the
// commands connection the ping is the data-loss check (data-loss.ts), which Redis answers too.
import { Cluster } from 'ioredis';
import { reasonOf, type Connection, type RedisContext } from './connection.ts';

/** Often enough that data lost without a disconnect is noticed within about a second. */
export const DEFAULT_HEARTBEAT_MS = 1000;

/** A connection and what the heartbeat sends on it (a PING unless said otherwise). */
export interface Probed {
  connection: Connection;
  probe?: () => Promise<unknown>;
}

/**
 * One probe per connection every heartbeatMs, never two at once on one connection. A failed probe
 * tears a server's connection down (it reconnects, or on a cluster the node is found again); a
 * Cluster client is left alone, its nodes have probes of their own. Returns the timer, unref'd.
 */
export function startHeartbeat(context: RedisContext, probed: () => Promise<Probed[]>, heartbeatMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    void probed().then((all) => {
      for (const { connection, probe } of all) {
        const { client } = connection;
        if (context.closing || client.status !== 'ready' || connection.heartbeatInFlight) continue;
        connection.heartbeatInFlight = true;
        (probe ? probe() : client.ping())
          .then(() => {
            if (client instanceof Cluster) connection.outageReported = false;
          })
          .catch((error: unknown) => {
            if (context.closing || client.status !== 'ready') return;
            connection.lastError = reasonOf(context, error);
            if (client instanceof Cluster) {
              // A node is down or failing over: said once until a probe succeeds again.
              if (!connection.outageReported) context.logger.warn({ redis: context.server, reason: connection.lastError }, 'part of the Redis cluster is not answering');
              connection.outageReported = true;
              return;
            }
            context.logger.warn({ redis: context.server, connection: connection.role, reason: connection.lastError }, 'Redis stopped answering; reconnecting');
            connection.outageReported = true;
            client.disconnect(true);
          })
          .finally(() => {
            connection.heartbeatInFlight = false;
          });
      }
    });
  }, heartbeatMs);
  timer.unref();
  return timer;
}
