import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { Redis } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { freePort, killRedisServer, startRedisProcess, startRedisServer, tlsServerArgs, until, withRedisClient, type ServerTls } from './private-redis.ts';
import { createTestCa } from './test-certificates.ts';

// A Redis Sentinel set-up of a test file's own, on loopback ports of its own: one master, one
// replica, three sentinels (quorum 2) that fail the master over a second after it stops answering.
// With tls, every server and sentinel speaks TLS only, with certificates from a CA of its own.

export interface PrivateSentinelOptions {
  masterName?: string;
  /** TLS everywhere; with authClients, every server and sentinel asks clients for a certificate. */
  tls?: { authClients: boolean };
}

/** With TLS: what a client needs, as PEM (the CA, and a client certificate the servers accept). */
export interface ClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** The same as files. */
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface Address {
  host: string;
  port: number;
}

export interface PrivateSentinel {
  masterName: string;
  sentinels: Address[];
  /** With TLS: the client side's CA and certificate. */
  clientTls?: ClientTls;
  /** REDIS_SENTINELS and REDIS_SENTINEL_MASTER (with TLS, the REDIS_TLS settings) for a Tessera on this set-up. */
  env: Record<string, string>;
  /** Where the sentinels say the master is now. */
  masterAddress(): Promise<Address>;
  /** Waits until the replica has every write the master acknowledged so far. */
  waitForReplication(): Promise<void>;
  /** kill -9 of the current master; resolves with where it was. */
  killMaster(): Promise<Address>;
  /**
   * SIGSTOP of every server but the current master: they stay attached (the master still counts
   * them) but confirm nothing. Resolves with a function that resumes them.
   */
  freezeReplicas(): Promise<() => void>;
  /** Resolves once the sentinels name a master other than `old` (after a failover), with it. */
  waitForNewMaster(old: Address, timeoutMs: number): Promise<Address>;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** [a, b, c, d] as [[a, b], [c, d]]. */
function pairs(items: string[]): [string, string][] {
  return items.flatMap((item, index) => (index % 2 === 0 ? [[item, items[index + 1]!] as [string, string]] : []));
}

/** Starts the set-up; resolves once the sentinels know the replica and each other. */
export async function startPrivateSentinel({ masterName = 'tessera-test', tls }: PrivateSentinelOptions = {}): Promise<PrivateSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sentinel-'));
  const servers = new Map<number, ChildProcess>();
  const sentinelProcesses: ChildProcess[] = [];
  const sentinels: Address[] = [];
  const stop = async () => {
    await Promise.all([...servers.values(), ...sentinelProcesses].map((child) => killRedisServer(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  let serverTls: ServerTls | undefined;
  let clientTls: ClientTls | undefined;
  let probeTls: ConnectionOptions | undefined;
  const withProbe = <T>(address: Address, use: (client: Redis) => Promise<T>) => withRedisClient(address, use, probeTls ? { tls: probeTls } : {});
  try {
    if (tls) {
      const ca = await createTestCa(dir);
      const server = await ca.issue('redis-server', `IP:${HOST}`);
      const client = await ca.issue('tessera-client');
      serverTls = { ...server, caFile: ca.certFile, authClients: tls.authClients };
      const read = (file: string) => readFileSync(file);
      clientTls = { ca: read(ca.certFile), cert: read(client.certFile), key: read(client.keyFile), caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile };
      probeTls = { ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key };
    }
    const masterPort = await freePort();
    servers.set(masterPort, await startRedisServer(masterPort, [], serverTls));
    const replicaPort = await freePort();
    servers.set(replicaPort, await startRedisServer(replicaPort, ['--replicaof', HOST, String(masterPort)], serverTls));
    await until('the replica in sync', 15_000, () =>
      withProbe({ host: HOST, port: replicaPort }, async (client) => ((await client.info('replication')).includes('master_link_status:up') ? true : undefined)),
    );
    for (let index = 0; index < 3; index++) {
      const port = await freePort();
      const file = join(dir, `sentinel-${port}.conf`);
      // The TLS arguments of a server, as lines of a configuration file.
      const listen = serverTls ? pairs(tlsServerArgs(port, serverTls)).map(([name, value]) => `${name.slice(2)} ${value}`) : [`port ${port}`];
      writeFileSync(
        file,
        [
          ...listen,
          `bind ${HOST}`,
          `dir ${dir}`,
          `sentinel monitor ${masterName} ${HOST} ${masterPort} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      sentinelProcesses.push(await startRedisProcess('redis-sentinel', '+monitor master', [file]));
      sentinels.push({ host: HOST, port });
    }
    for (const sentinel of sentinels) {
      await until('each sentinel knowing the replica and the other sentinels', 30_000, () =>
        withProbe(sentinel, async (client) => {
          const replicas = (await client.call('SENTINEL', 'REPLICAS', masterName)) as unknown[];
          const peers = (await client.call('SENTINEL', 'SENTINELS', masterName)) as unknown[];
          return replicas.length >= 1 && peers.length >= 2 ? true : undefined;
        }),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const masterAddress = async (): Promise<Address> => {
    let lastError: unknown;
    for (const sentinel of sentinels) {
      try {
        const [host, port] = await withProbe(sentinel, (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName) as Promise<[string, string]>);
        return { host, port: Number(port) };
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no sentinel answered: ${String(lastError)}`);
  };

  const tlsEnv: Record<string, string> = clientTls
    ? {
        REDIS_TLS: 'true',
        REDIS_SENTINEL_TLS: 'true',
        REDIS_TLS_CA_FILE: clientTls.caFile,
        ...(tls?.authClients ? { REDIS_TLS_CERT_FILE: clientTls.certFile, REDIS_TLS_KEY_FILE: clientTls.keyFile } : {}),
      }
    : {};
  return {
    masterName,
    sentinels,
    ...(clientTls ? { clientTls } : {}),
    env: { REDIS_SENTINELS: sentinels.map(({ host, port }) => `${host}:${port}`).join(','), REDIS_SENTINEL_MASTER: masterName, ...tlsEnv },
    masterAddress,
    async waitForReplication() {
      const master = await masterAddress();
      const acknowledged = await withProbe(master, (client) => client.call('WAIT', '1', '10000') as Promise<number>);
      if (acknowledged < 1) throw new Error('the replica did not acknowledge the master\'s writes within 10 s');
    },
    async freezeReplicas() {
      const master = await masterAddress();
      const replicas = [...servers].filter(([port, child]) => port !== master.port && child.exitCode === null && child.signalCode === null).map(([, child]) => child);
      for (const replica of replicas) replica.kill('SIGSTOP');
      return () => {
        for (const replica of replicas) replica.kill('SIGCONT');
      };
    },
    async killMaster() {
      const master = await masterAddress();
      await killRedisServer(servers.get(master.port));
      return master;
    },
    waitForNewMaster(old, timeoutMs) {
      return until('a new master', timeoutMs, async () => {
        const now = await masterAddress();
        return now.port !== old.port || now.host !== old.host ? now : undefined;
      });
    },
    stop,
  };
}

/**
 * A set-up for the test file that calls this (at its top level): started before its tests,
 * stopped after them. Returns a getter for it.
 */
export function usePrivateSentinel(options: PrivateSentinelOptions = {}): () => PrivateSentinel {
  let sentinel: PrivateSentinel | undefined;
  beforeAll(async () => {
    sentinel = await startPrivateSentinel(options);
  }, 60_000);
  afterAll(async () => {
    await sentinel?.stop();
  });
  return () => {
    if (!sentinel) throw new Error('the private Sentinel set-up is not running');
    return sentinel;
  };
}
