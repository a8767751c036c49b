// Pings each connection so that one dead without its socket knowing (a frozen server, a dropped
// network path) is torn down and re-established, and a subscriber learns it missed messages.
import { reasonOf, type Connection, type RedisContext } from './connection.ts';

export const DEFAULT_HEARTBEAT_MS = 5000;

/** One PING per connection every heartbeatMs, never two at once. Returns the timer, unref'd. */
export function startHeartbeat(context: RedisContext, connections: () => Promise<Connection[]>, heartbeatMs: number): NodeJS.Timeout {
  const timer = setInterval(() => {
    void connections().then((all) => {
      for (const connection of all) {
        const { client } = connection;
        if (context.closing || client.status !== 'ready' || connection.heartbeatInFlight) continue;
        connection.heartbeatInFlight = true;
        client
          .ping()
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
