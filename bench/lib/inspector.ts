import type { ServerProcess } from './child.ts';
import { sleep } from './child.ts';

/**
 * The V8 heap of a running server after a full garbage collection, through the inspector that
 * SIGUSR1 opens (on 127.0.0.1:9229): what its live objects take, as opposed to its RSS, which
 * also counts heap V8 has grown and not given back. Opens the inspector for good: use it last.
 */
export async function heapAfterGc(server: ServerProcess): Promise<{ usedHeapBytes: number; totalHeapBytes: number }> {
  process.kill(server.pid, 'SIGUSR1');
  let url: string | undefined;
  for (let i = 0; i < 50 && !url; i++) {
    url = /Debugger listening on (ws:\/\/\S+)/.exec(server.stderr())?.[1];
    if (!url) await sleep(100);
  }
  if (!url) throw new Error('the server did not open its inspector');
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error('could not connect to the inspector')), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown> };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  });
  const call = (method: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method }));
    });
  try {
    await call('HeapProfiler.collectGarbage');
    const usage = await call('Runtime.getHeapUsage');
    return { usedHeapBytes: Number(usage.usedSize), totalHeapBytes: Number(usage.totalSize) };
  } finally {
    socket.close();
  }
}
