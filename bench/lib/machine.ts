import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { ROOT } from './child.ts';

export interface Machine {
  cores: number;
  cpuModel: string;
  totalMemoryGiB: number;
  kernel: string;
  loadAverageAtStart: number[];
  /** How busy the cores were over the second before the run (other work skews every figure). */
  cpuBusyAtStartPercent: number;
}

/** The share of CPU time not idle over `ms`, from /proc/stat (NaN where there is none). */
export async function cpuBusyPercent(ms = 1000): Promise<number> {
  const read = () => {
    try {
      const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const idle = fields[3]! + (fields[4] ?? 0);
      return { idle, total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  };
  const before = read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = read();
  if (!before || !after || after.total === before.total) return Number.NaN;
  return Math.round((1 - (after.idle - before.idle) / (after.total - before.total)) * 100);
}

export async function machine(): Promise<Machine> {
  return {
    cpuBusyAtStartPercent: await cpuBusyPercent(),
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

const packageVersion = (path: string) => String((JSON.parse(readFileSync(resolve(ROOT, path), 'utf8')) as { version?: string }).version);

export async function versions(redis: Redis, databaseUrl: string): Promise<Record<string, string>> {
  const info = await redis.info('server');
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let postgres: string;
  try {
    postgres = String((await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version);
  } finally {
    await client.end();
  }
  return {
    tessera: packageVersion('package.json'),
    node: process.version,
    redis: /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown',
    postgres,
    'oidc-provider': packageVersion('node_modules/oidc-provider/package.json'),
    autocannon: packageVersion('node_modules/autocannon/package.json'),
  };
}
