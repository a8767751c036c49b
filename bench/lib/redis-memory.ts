import type { Redis } from 'ioredis';

/** What the keys under a prefix take in Redis: their count and MEMORY USAGE (exact: SAMPLES 0). */
export interface PrefixMemory {
  keys: number;
  bytes: number;
}

export async function prefixMemory(redis: Redis, prefix: string): Promise<PrefixMemory> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 2000);
    cursor = next;
    if (batch.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of batch) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [error, usage] of (await pipeline.exec()) ?? []) {
      if (error) throw error;
      if (typeof usage === 'number') {
        keys += 1;
        bytes += usage;
      }
    }
  } while (cursor !== '0');
  return { keys, bytes };
}

/** INFO memory's used_memory: the whole server's, so only indicative on a shared Redis. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
}

/** Bytes per item from two readings around the creation of `count` items. */
export function perItem(before: PrefixMemory, after: PrefixMemory, count: number) {
  return { items: count, keysPerItem: round1((after.keys - before.keys) / count), bytesPerItem: Math.round((after.bytes - before.bytes) / count) };
}

const round1 = (value: number) => Math.round(value * 10) / 10;
