import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { slotOfKey } from '../../src/store/redis/cluster-slots.ts';
import { freePort, killRedisServer, startRedisServer, until, withRedisClient, type ServerTls } from './private-redis.ts';
import type { ClientTls } from './private-sentinel.ts';
import { createTestCa } from './test-certificates.ts';

// A Redis Cluster of a test file's own (or the bench's), on loopback ports of its own: three masters and three
// replicas (or none), each node in a directory of its own, a replica taking over a second after its master
// stops answering (cluster-node-timeout 1000). With tls, every node speaks TLS only, the cluster
// bus and replication too, with certificates from a CA of its own.

export interface PrivateClusterOptions {
  /** Replicas per master: 1 (the default: a replica takes over a master that dies) or 0. */
  replicas?: 0 | 1;
  /** TLS everywhere; with authClients, every node asks clients for a certificate. */
  tls?: { authClients: boolean };
  /** Every node's requirepass (and masterauth, for its replicas). */
  password?: string;
}

export interface Address {
  host: string;
  port: number;
}

export interface PrivateCluster {
  /** The seed nodes (every node of the cluster). */
  nodes: Address[];
  /** With TLS: the client side's CA and certificate. */
  clientTls?: ClientTls;
  /** REDIS_CLUSTER_NODES (with TLS, the REDIS_TLS settings) for a Tessera on this cluster. */
  env: Record<string, string>;
  /** The master that serves the slot of `key` now (any key's hash tag counts, as in Redis). */
  masterOf(key: string): Promise<Address>;
  /** The masters, as the cluster sees them now. */
  masters(): Promise<Address[]>;
  /** Waits until every replica has every write its master acknowledged so far. */
  waitForReplication(): Promise<void>;
  /** kill -9 of the master serving the slot of `key` (by default, of slot 0); resolves with where it was. */
  killMaster(key?: string): Promise<Address>;
  /** kill -9 of the node at this address. */
  killNode(address: Address): Promise<Address>;
  /** SIGSTOP of the node at this address (it keeps its sockets open and answers nothing), or SIGCONT. */
  freezeNode(address: Address, frozen: boolean): void;
  /** Resolves once a node other than `old` serves the slot of `key` and the cluster is ok again. */
  waitForFailover(old: Address, key: string | undefined, timeoutMs: number): Promise<Address>;
  /** Starts a node that was killed again, on its port and with its cluster state (it rejoins). */
  restartNode(address: Address): Promise<void>;
  /** The process ids of the nodes running now (the bench reports their CPU). */
  pids(): number[];
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const run = promisify(execFile);

type SlotRange = [number, number, [string, number, ...unknown[]], ...unknown[]];

/** Starts the cluster; resolves once every node reports cluster_state:ok and knows every other. */
export async function startPrivateCluster({ tls, password, replicas = 1 }: PrivateClusterOptions = {}): Promise<PrivateCluster> {
  const servers = new Map<number, { child: ChildProcess; dir: string; busPort: number }>();
  const certificates = mkdtempSync(join(tmpdir(), 'tessera-cluster-tls-'));
  const stop = async () => {
    await Promise.all([...servers.values()].map(({ child }) => killRedisServer(child)));
    for (const { dir } of servers.values()) rmSync(dir, { recursive: true, force: true });
    rmSync(certificates, { recursive: true, force: true });
  };
  let serverTls: ServerTls | undefined;
  let clientTls: ClientTls | undefined;
  let probeTls: ConnectionOptions | undefined;
  const withProbe = <T>(address: Address, use: (client: Redis) => Promise<T>) => withRedisClient(address, use, { ...(probeTls ? { tls: probeTls } : {}), ...(password ? { password } : {}) });
  // The bus port is chosen too: port + 10000, Redis's default, may be taken or above 65535.
  const startNode = async (port: number, dir: string, busPort: number) => {
    const cluster = ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '1000', '--cluster-port', String(busPort)];
    const auth = password ? ['--requirepass', password, '--masterauth', password] : [];
    const child = await startRedisServer(port, [...cluster, ...auth, ...(serverTls ? ['--tls-cluster', 'yes'] : []), '--dir', dir, '--repl-diskless-sync-delay', '0'], serverTls);
    servers.set(port, { child, dir, busPort });
  };
  const nodes: Address[] = [];
  try {
    if (tls) {
      const ca = await createTestCa(certificates);
      const server = await ca.issue('redis-server', `IP:${HOST}`);
      const client = await ca.issue('tessera-client');
      serverTls = { ...server, caFile: ca.certFile, authClients: tls.authClients };
      const read = (file: string) => readFileSync(file);
      clientTls = { ca: read(ca.certFile), cert: read(client.certFile), key: read(client.keyFile), caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile };
      probeTls = { ca: clientTls.ca, cert: clientTls.cert, key: clientTls.key };
    }
    for (let index = 0; index < 3 * (1 + replicas); index++) {
      const port = await freePort();
      await startNode(port, mkdtempSync(join(tmpdir(), `tessera-cluster-${port}-`)), await freePort());
      nodes.push({ host: HOST, port });
    }
    const cliTls = clientTls ? ['--tls', '--cacert', clientTls.caFile, '--cert', clientTls.certFile, '--key', clientTls.keyFile] : [];
    await run('redis-cli', [...cliTls, ...(password ? ['-a', password, '--no-auth-warning'] : []), '--cluster', 'create', ...nodes.map(({ host, port }) => `${host}:${port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
    await waitForClusterOk(nodes, nodes.length, probeTls, 60_000, password);
    // A replica takes over only with data recent enough: wait until each one has synced.
    for (const node of nodes) {
      await until(`the replica at ${node.port} in sync`, 30_000, () =>
        withProbe(node, async (client) => {
          const info = await client.info('replication');
          return info.includes('role:master') || info.includes('master_link_status:up') ? true : undefined;
        }),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const liveNodes = () => nodes.filter(({ port }) => {
    const child = servers.get(port)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  });
  const slots = async (): Promise<SlotRange[]> => {
    let lastError: unknown;
    for (const node of liveNodes()) {
      try {
        return await withProbe(node, (client) => client.call('CLUSTER', 'SLOTS') as Promise<SlotRange[]>);
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no node of the cluster answered: ${String(lastError)}`);
  };
  const masterOfSlot = async (slot: number): Promise<Address> => {
    const range = (await slots()).find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return { host: range[2][0], port: range[2][1] };
  };
  const slotOf = (key: string | undefined) => (key === undefined ? 0 : slotOfKey(key));

  const tlsEnv: Record<string, string> = clientTls
    ? { REDIS_TLS: 'true', REDIS_TLS_CA_FILE: clientTls.caFile, ...(tls?.authClients ? { REDIS_TLS_CERT_FILE: clientTls.certFile, REDIS_TLS_KEY_FILE: clientTls.keyFile } : {}) }
    : {};
  if (password) tlsEnv.REDIS_PASSWORD = password;
  return {
    nodes,
    ...(clientTls ? { clientTls } : {}),
    env: { REDIS_CLUSTER_NODES: nodes.map(({ host, port }) => `${host}:${port}`).join(','), ...tlsEnv },
    masterOf: (key) => masterOfSlot(slotOfKey(key)),
    async masters() {
      return (await slots()).map((range) => ({ host: range[2][0], port: range[2][1] })).filter((address, index, all) => all.findIndex((other) => other.port === address.port) === index);
    },
    /** (Of the masters that have a replica: one whose replica was killed has none to wait for.) */
    async waitForReplication() {
      const masters = (await slots()).map((range) => ({ host: range[2][0], port: range[2][1] }));
      for (const master of masters) {
        const info = await withProbe(master, (client) => client.info('replication'));
        if (info.includes('connected_slaves:0')) continue;
        const acknowledged = await withProbe(master, (client) => client.call('WAIT', '1', '10000') as Promise<number>);
        if (acknowledged < 1) throw new Error(`the replica of ${master.port} did not acknowledge its writes within 10 s`);
      }
    },
    async killMaster(key) {
      const master = await masterOfSlot(slotOf(key));
      await killRedisServer(servers.get(master.port)?.child);
      return master;
    },
    freezeNode(address, frozen) {
      servers.get(address.port)?.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
    },
    async killNode(address) {
      await killRedisServer(servers.get(address.port)?.child);
      return address;
    },
    async waitForFailover(old, key, timeoutMs) {
      const promoted = await until('a replica promoted', timeoutMs, async () => {
        const now = await masterOfSlot(slotOf(key));
        return now.port !== old.port ? now : undefined;
      });
      // (Not asking `old`: it may be frozen rather than dead.)
      await waitForClusterOk(liveNodes().filter(({ port }) => port !== old.port), nodes.length, probeTls, timeoutMs, password);
      return promoted;
    },
    async restartNode(address) {
      const server = servers.get(address.port);
      if (!server) throw new Error(`no node of this cluster at port ${address.port}`);
      await killRedisServer(server.child);
      await startNode(address.port, server.dir, server.busPort);
      await waitForClusterOk(liveNodes(), nodes.length, probeTls, 30_000, password);
    },
    pids: () => [...servers.values()].flatMap(({ child }) => (child.pid !== undefined && child.exitCode === null ? [child.pid] : [])),
    stop,
  };
}

/** Until each of `nodes` says the cluster is ok and knows all `knownNodes` (a dead one stays known). */
async function waitForClusterOk(nodes: Address[], knownNodes: number, tls: ConnectionOptions | undefined, timeoutMs: number, password?: string): Promise<void> {
  for (const node of nodes) {
    await until(`cluster_state:ok at ${node.port}`, timeoutMs, () =>
      withRedisClient(
        node,
        async (client) => {
          const info = (await client.call('CLUSTER', 'INFO')) as string;
          return info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${knownNodes}`) ? true : undefined;
        },
        { ...(tls ? { tls } : {}), ...(password ? { password } : {}) },
      ),
    );
  }
}

/** A Cluster client on the private cluster, for what a test checks beside the store. */
export function rawClusterClient(cluster: PrivateCluster): Cluster {
  const tls = cluster.clientTls ? { tls: { ca: cluster.clientTls.ca, cert: cluster.clientTls.cert, key: cluster.clientTls.key } } : {};
  return new Cluster(cluster.nodes, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 0, ...tls } });
}
