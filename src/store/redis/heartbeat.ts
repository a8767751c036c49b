// Pings each connection so that one dead without its socket knowing (a frozen server, a dropped
// network path) is torn down and re-established, and a subscriber learns it missed messages. On the
// commands connection the ping is the data-loss check (data-loss.ts), on the replicated-writes one
// the count of replicas (replicated-writes.ts): Redis answers those too.
import { reasonOf, type Connection, type RedisContext, type Role } from './connection.ts';

/** Often enough that data lost without a disconnect is noticed within about a second. */
export const DEFAULT_HEARTBEAT_MS = 1000;

/**
 * One PING per connection every heartbeatMs (its role's probe instead, where `probes` has one),
 * never two at once. Returns the timer, unref'd.
 */
export function startHeartbeat(context: RedisContext, connections: () => Promise<Connection[]>, heartbeatMs: number, probes: Partial<Record<Role, () => Promise<unknown>>> = {}): NodeJS.Timeout {
  const timer = setInterval(() => {
    void connections().then((all) => {
      for (const connection of all) {
        const { client } = connection;
        if (context.closing || client.status !== 'ready' || connection.heartbeatInFlight) continue;
        connection.heartbeatInFlight = true;
        const probe = probes[connection.role]?.() ?? client.ping();
        probe
          .catch((error: unknown) => {
            if (context.closing || client.status !== 'ready') return;
            connection.lastError = reasonOf(context, error);
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
