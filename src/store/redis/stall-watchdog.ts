// Fails a command left unanswered for commandTimeoutMs, from one timer for all commands. The one
// place that reads past ioredis' documented API (its command queue); docs/design/redis-store.md.
import type { Redis } from 'ioredis';

/** The ioredis version whose command queue this was last reviewed against (package.json pins it). */
export const REVIEWED_IOREDIS_VERSION = '5.11.1';

/**
 * Every quarter of commandTimeoutMs, notes when each unanswered command was first seen and rejects
 * those seen at least commandTimeoutMs ago with "Command timed out", as ioredis' own commandTimeout
 * would. `servers` are the connections to one server each (on a cluster, every node's). Returns
 * the timer, unref'd.
 */
export function startStallWatchdog(servers: () => Promise<Redis[]>, commandTimeoutMs: number): NodeJS.Timeout {
  let firstSeen = new Map<object, number>();
  const timer = setInterval(() => {
    void servers().then((all) => {
      const now = performance.now();
      const seen = new Map<object, number>();
      for (const client of all) {
        const queue = client.commandQueue;
        for (let index = 0; index < queue.length; index++) {
          const item = queue.peekAt(index);
          if (!item) continue;
          const since = firstSeen.get(item) ?? now;
          if (now - since >= commandTimeoutMs) item.command.reject(new Error('Command timed out'));
          else seen.set(item, since);
        }
      }
      firstSeen = seen;
    });
  }, Math.max(1, Math.floor(commandTimeoutMs / 4)));
  timer.unref();
  return timer;
}
