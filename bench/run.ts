/**
 * `npm run bench`: Tessera's figures beside two reference servers, on this machine, in one run.
 *
 * Each server runs in its own process and only one is loaded at a time (they do not share the
 * cores); the load comes from other processes (wrk, else autocannon, for fixed requests;
 * bench/load/* for stateful flows). Each figure is the median of BENCH_RUNS runs of
 * BENCH_RUN_SECONDS. Figures that are compared as ratios are measured in turns — a run of each,
 * round after round — so that the machine's drift in speed (seconds long, tens of per cent) falls
 * on all of them alike: many short runs, for the same reason. The report
 * goes to bench/results/ (latest.json, latest.md and a dated copy of each). Targets print PASS or
 * FAIL; a FAIL never makes the run fail — only a real error does.
 *
 * Environment (defaults in brackets):
 *   REDIS_URL [redis://127.0.0.1:6379]; BENCH_DATABASE_URL [postgres://postgres@127.0.0.1:5432/test]:
 *     where the bench database is created (and dropped);
 *   BENCH_CONNECTIONS [32], BENCH_WARMUP_SECONDS [0: before every run], BENCH_FIRST_WARMUP_SECONDS
 *     [3: before the first run on each freshly started server], BENCH_RUNS [9], BENCH_RUN_SECONDS [1];
 *   BENCH_SECTIONS [all]: some of bare, stock (or stock-introspection, stock-cc, stock-refresh),
 *     introspection, cc, refresh (token: both), device, login, memory, workers (two workers beside
 *     one process), cluster (Tessera on a Redis Cluster of three masters beside a single Redis),
 *     metrics (Tessera with TESSERA_METRICS_PORT beside one without);
 *   BENCH_CPU_PROF: a directory; every server runs with --cpu-prof and writes its profile to
 *     <dir>/<server>/ (summarise one with `node bench/profile-summary.ts <file>`);
 *   BENCH_TESSERA_ROOT: run another checkout's src/main.ts, e.g. to measure a change;
 *   BENCH_COMPARE_ROOT: also run another checkout's Tessera (e.g. main before a change) beside this
 *     one, measured in the same rounds on introspection, client credentials and refresh; the report
 *     gives both columns and their ratio;
 *   BENCH_TESSERA_ENV: more environment for Tessera ("TESSERA_HASH_CONCURRENCY=1 …");
 *   BENCH_LOAD [wrk if installed, else autocannon]: the load generator for fixed requests;
 *     Debian's wrk (C) takes less of the cores and starts in milliseconds; wrk runs whole seconds;
 *   BENCH_RESULTS [bench/results].
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { createOidcAdapterFactory } from '../src/oauth/adapter/oidc-adapter.ts';
import { oidcKeyFor } from '../src/oauth/adapter/oidc-keys.ts';
import type { DevicePollInput, DevicePollResult } from './load/device-polls.ts';
import { basicAuth } from './load/http-client.ts';
import type { LoginInput, LoginResult } from './load/login-storm.ts';
import type { RefreshInput, RefreshResult } from './load/refresh-chains.ts';
import { listeningLine, processMemory, progress, ROOT, runChild, sleep, startChild, startServer, type ServerProcess } from './lib/child.ts';
import { settle } from './lib/cpu.ts';
import { heapAfterGc } from './lib/inspector.ts';
import { machine, versions } from './lib/machine.ts';
import { bulk, fixedLoadGenerator, fixedLoadRun, form, inRounds, measured, timingFromEnv, type Contender, type FormRequest, type Watched } from './lib/measure.ts';
import { perItem, prefixMemory, usedMemory } from './lib/redis-memory.ts';
import { evaluateTargets, renderMarkdown, warmups, type BenchReport, type RefreshMeasured } from './lib/report.ts';
import { summarise, type Measured } from './lib/stats.ts';
import { DEVICE_POLL_INTERVAL_SECONDS, deleteRedisPrefix, freePort, startTessera, type TesseraUnderTest } from './servers/tessera.ts';
import { clientCredentialsToken, mintRefreshTokens, prepareTessera, type TesseraFixtures } from './servers/tessera-fixtures.ts';
import { startPrivateCluster } from '../test/support/private-cluster.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RESULTS = resolve(ROOT, process.env.BENCH_RESULTS ?? 'bench/results');
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? 'all').split(',').map((s) => s.trim()));
const want = (section: string) => SECTIONS.has('all') || SECTIONS.has(section) || (SECTIONS.has('token') && (section === 'cc' || section === 'refresh'));
const timing = timingFromEnv();
const loadGenerator = fixedLoadGenerator();
/** One run of a fixed request (a Contender's run), with the load generator chosen above. */
const fixedLoad = (request: FormRequest) => fixedLoadRun(timing, loadGenerator, request);

const REFRESH_CHAINS = 32;
const PENDING_DEVICES = 1000;
const DEVICE_POLL_CONNECTIONS = 32;
const STORM_USERS = 4;
const STORM_CONNECTIONS = 64;
const MEMORY_ITEMS = 10_000;
const RSS_TOKENS = 100_000;

/** What must be undone if the run is interrupted (servers, the bench database, Redis keys). */
const cleanups = new Set<() => Promise<void>>();
process.once('SIGINT', () => {
  progress('interrupted: cleaning up');
  void Promise.allSettled([...cleanups].map((cleanup) => cleanup())).then(() => process.exit(130));
});

const started = performance.now();
const startedAt = new Date();
const redis = new Redis(REDIS_URL);
const report: BenchReport = {
  startedAt: startedAt.toISOString(),
  totalSeconds: 0,
  machine: await machine(),
  versions: await versions(redis, DATABASE_URL),
  settings: {
    ...timing,
    loadGenerator: `${loadGenerator.name === 'wrk' ? `wrk ${loadGenerator.version} (one thread, a Lua script checking every answer)` : 'autocannon (JS API)'} in a separate process for fixed requests; bench/load/* for stateful flows`,
    notes: [],
  },
  introspection: {},
  tokenEndpoint: {},
  passwordLogin: {},
  memory: {},
  targets: [],
};
const notes = report.settings.notes;
if (loadGenerator.reason) {
  notes.push(`fixed requests loaded with autocannon: ${loadGenerator.reason}`);
  progress(`warning: ${loadGenerator.reason}`);
}
const redisPid = Number(/^process_id:(\d+)/m.exec(await redis.info('server'))?.[1]) || undefined;
if (report.machine.cpuBusyAtStartPercent > 15) {
  const warning = `the machine was busy when the run started (${report.machine.cpuBusyAtStartPercent}% of the CPU in use): figures may be low and noisy`;
  notes.push(warning);
  progress(`warning: ${warning}`);
}
progress(`${report.machine.cores} cores, ${report.machine.cpuModel}; node ${report.versions.node}, redis ${report.versions.redis}, postgres ${report.versions.postgres}`);
progress(`each figure: median of ${timing.runs} runs of ${timing.runSeconds} s${warmups(timing)}, ${timing.connections} connections; fixed requests loaded with ${loadGenerator.name}`);

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const INTROSPECT = '/oauth/introspect';
const TOKEN = '/oauth/token';
const ACTIVE = '"active":true';
const INACTIVE = '"active":false';
/** A compact JWS whose protected header begins {"alg": (base64url). */
const SIGNED_ANSWER = 'eyJhbGci';

/** With BENCH_CPU_PROF, each server writes its CPU profile to a folder of its own in that directory. */
function profileArgs(server: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(dir, server)}`] : [];
}

/** A reference server (prints its URL) with its own Redis prefix; stopping it deletes the prefix. */
async function startReferenceServer(script: string, env: Record<string, string>): Promise<ServerProcess> {
  const prefix = `tessera_bench_${process.pid}_${randomBytes(3).toString('hex')}:`;
  const port = await freePort();
  const server = await startServer([...profileArgs(script.split('/').at(-1)!.replace('.ts', '')), script], { REDIS_URL, BENCH_REDIS_PREFIX: prefix, PORT: String(port), ...env }, listeningLine);
  const cleanup = async () => {
    cleanups.delete(cleanup);
    await server.stop();
    await deleteRedisPrefix(REDIS_URL, prefix);
  };
  cleanups.add(cleanup);
  return server;
}

/** The servers measured so far: the first figure on each warms up longer. */
const warmed = new Set<string>();

/** 32 rotating refresh chains on a server, as a Contender: each run goes on from the tokens the last returned. */
function refreshChains(name: string, watched: Watched, url: string, clientId: string, refreshTokens: string[]) {
  let tokens = refreshTokens;
  let chainsAlive = tokens.length;
  const failures: Record<string, number> = {};
  const contender: Contender = {
    name,
    server: name,
    watched,
    async run(warmupSeconds) {
      const input: RefreshInput = { url, tokenPath: TOKEN, clientId, refreshTokens: tokens, warmupSeconds, runs: 1, runSeconds: timing.runSeconds };
      const result = await runChild<RefreshResult>('bench/load/refresh-chains.ts', input);
      tokens = result.refreshTokens;
      chainsAlive = result.chainsAlive;
      for (const [reason, count] of Object.entries(result.failures)) failures[reason] = (failures[reason] ?? 0) + count;
      return result.runs[0]!;
    },
  };
  const withChains = (figures: Measured): RefreshMeasured => ({ ...figures, chains: refreshTokens.length, chainsAlive, failures });
  return { contender, withChains };
}

// ---------------------------------------------------------------------------------------------
// The servers: (a) bare node:http + one Redis GET, (b) stock oidc-provider with a plain Redis
// adapter, and Tessera, all started before measuring and kept until the end, so that the figures
// compared as ratios are measured in turns (measure.ts, inRounds).
const wantStock = (part: 'introspection' | 'cc' | 'refresh') => want('stock') || SECTIONS.has(`stock-${part}`);
const tesseraSections = ['introspection', 'cc', 'refresh', 'device', 'login', 'memory', 'workers', 'cluster', 'metrics'].filter(want);
const bareToken = randomBytes(32).toString('base64url');
const stockSecret = randomBytes(24).toString('base64url');
let bare: ServerProcess | undefined;
let stock: ServerProcess | undefined;
let tessera: { t: TesseraUnderTest; f: TesseraFixtures } | undefined;
/** With BENCH_COMPARE_ROOT: the other checkout's Tessera, measured in the same rounds. */
let compared: { t: TesseraUnderTest; f: TesseraFixtures; root: string } | undefined;
const COMPARE_ROOT = process.env.BENCH_COMPARE_ROOT;
try {
  if (want('bare')) {
    progress('bare node:http + one Redis GET: starting');
    bare = await startReferenceServer('bench/servers/bare-redis.ts', { BENCH_SEED_TOKEN: bareToken });
  }
  if (wantStock('introspection') || wantStock('cc') || wantStock('refresh')) {
    progress('stock oidc-provider: starting');
    stock = await startReferenceServer('bench/servers/stock-oidc-provider.ts', { BENCH_SECRET: stockSecret });
  }
  if (tesseraSections.length) tessera = await startTesseraUnderTest();
  if (COMPARE_ROOT && ['introspection', 'cc', 'refresh'].some(want)) {
    compared = { ...(await startTesseraUnderTest(COMPARE_ROOT, 'compared')), root: resolve(COMPARE_ROOT) };
    const commit = spawnSync('git', ['-C', compared.root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    notes.push(`compared with the Tessera of ${compared.root}${commit ? ` (commit ${commit})` : ''}, measured in the same rounds ("compared" in the tables)`);
  }
  await measureAll();
} finally {
  for (const cleanup of [...cleanups]) await cleanup();
}

async function startTesseraUnderTest(
  root = process.env.BENCH_TESSERA_ROOT,
  label = 'Tessera',
  sectionEnv: Record<string, string> = {},
  redisEnv?: Record<string, string>,
): Promise<{ t: TesseraUnderTest; f: TesseraFixtures; stop(): Promise<void> }> {
  progress(`${label}: starting (node src/main.ts${root ? ` of ${root}` : ''}) on PostgreSQL and Redis`);
  if (root && label === 'Tessera') notes.push(`Tessera ran from ${root}`);
  const extraEnv = Object.fromEntries((process.env.BENCH_TESSERA_ENV ?? '').split(/\s+/).filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
  if (Object.keys(extraEnv).length) notes.push(`Tessera ran with ${Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const t = await startTessera({
    adminDatabaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    nodeArgs: profileArgs('tessera'),
    ...(root ? { root: resolve(root) } : {}),
    extraEnv: { ...extraEnv, ...sectionEnv },
    ...(redisEnv ? { redisEnv } : {}),
  });
  const cleanup = async () => {
    cleanups.delete(cleanup);
    progress(`${label}: stopping; dropping its database and Redis keys`);
    await t.stop();
  };
  cleanups.add(cleanup);
  if (label !== 'Tessera') return { t, f: await prepareTessera(t, STORM_USERS), stop: cleanup };
  const { argon2, hashing } = t.core.config.passwords;
  const hashingText = Object.entries(hashing)
    .map(([key, value]) => `${key} ${value ?? `${Math.max(1, report.machine.cores - 1)} (one fewer than the cores)`}`)
    .join(', ');
  notes.push(
    `Tessera ran with its defaults — argon2id m=${argon2.memoryKiB} KiB, t=${argon2.timeCost}, p=${argon2.parallelism}; hashing ${hashingText}; ` +
      `introspection cache ${t.core.config.introspection.cacheTtlSeconds} s — except: device poll interval ${DEVICE_POLL_INTERVAL_SECONDS} s, the per-address API limit and ` +
      'user-code attempts raised (all load comes from 127.0.0.1), a JWT resource added, log level warn.',
  );
  const f = await prepareTessera(t, STORM_USERS);
  report.memory.tesseraRssAtStartBytes = processMemory(t.server.pid).rssBytes;
  return { t, f, stop: cleanup };
}

/** Tessera's RSS after a section, to see where it grows. */
function rssAfter(t: TesseraUnderTest, section: string) {
  (report.memory.rssBytesAfter ??= {})[section] = processMemory(t.server.pid).rssBytes;
}

async function measureAll() {
  const stockService = { id: 'bench-service', secret: stockSecret, authorization: basicAuth('bench-service', stockSecret) };
  const stockWatched: Watched = { serverPid: stock?.pid, redisPid };
  const t = tessera?.t;
  const f = tessera?.f;
  const tesseraWatched: Watched = { serverPid: t?.server.pid, redisPid };

  // Introspection: each kind of Tessera credential, the bare server and stock oidc-provider.
  const introspectionContenders: Contender[] = [];
  if (bare) {
    introspectionContenders.push({
      name: 'bare',
      server: 'bare',
      watched: { serverPid: bare.pid, redisPid },
      run: fixedLoad({ url: `${bare.url}${INTROSPECT}`, body: form({ token: bareToken }), expect: ACTIVE }),
    });
  }
  if (stock && wantStock('introspection')) {
    const token = await clientCredentialsToken(stock.url, stockService);
    introspectionContenders.push({
      name: 'stock',
      server: 'stock',
      watched: stockWatched,
      run: fixedLoad({ url: `${stock.url}${INTROSPECT}`, headers: { authorization: basicAuth('bench-rs', stockSecret) }, body: form({ token }), expect: ACTIVE }),
    });
  }
  const kinds =
    t && f && want('introspection')
      ? ([
          ['opaque', f.tokens.opaque, ACTIVE],
          ['jwt', f.tokens.jwt, ACTIVE],
          ['personal', f.tokens.personal, ACTIVE],
          ['session', f.tokens.session, ACTIVE],
          ['unknown', f.tokens.unknown, INACTIVE],
        ] as const)
      : [];
  for (const [kind, token, expect] of kinds) {
    introspectionContenders.push({
      name: kind,
      server: 'tessera',
      watched: tesseraWatched,
      run: fixedLoad({ url: `${t!.url}${INTROSPECT}`, headers: { authorization: f!.resourceServer.authorization }, body: form({ token }), expect }),
    });
  }
  if (t && f && want('introspection')) {
    // RFC 9701: the opaque token's answer asked for as a signed JWT (signed per request), beside the JSON one.
    introspectionContenders.push({
      name: 'signed',
      server: 'tessera',
      watched: tesseraWatched,
      run: fixedLoad({ url: `${t.url}${INTROSPECT}`, headers: { authorization: f.resourceServer.authorization, accept: 'application/token-introspection+jwt' }, body: form({ token: f.tokens.opaque }), expect: SIGNED_ANSWER }),
    });
  }
  const c = compared;
  for (const [kind, , expect] of c ? kinds : []) {
    introspectionContenders.push({
      name: `compared ${kind}`,
      server: 'compared',
      watched: { serverPid: c!.t.server.pid, redisPid },
      run: fixedLoad({ url: `${c!.t.url}${INTROSPECT}`, headers: { authorization: c!.f.resourceServer.authorization }, body: form({ token: c!.f.tokens[kind] }), expect }),
    });
  }
  if (introspectionContenders.length) {
    progress(`introspection, in ${timing.runs} rounds: ${introspectionContenders.map((c) => c.name).join(', ')}`);
    const figures = await inRounds(timing, introspectionContenders, warmed);
    for (const [name, measuredFigures] of figures) {
      if (name.startsWith('compared ')) comparison(`introspection ${name.slice('compared '.length)}`, figures.get(name.slice('compared '.length))!, measuredFigures);
      else if (name === 'bare') report.introspection.bare = measuredFigures;
      else if (name === 'stock') report.introspection.stock = measuredFigures;
      else if (name === 'signed') report.introspection.signed = measuredFigures;
      else (report.introspection.tessera ??= {})[name as 'opaque'] = measuredFigures;
      progress(`  ${name}: ${measuredFigures.rps} req/s, p50 ${measuredFigures.p50Ms} ms, p99 ${measuredFigures.p99Ms} ms${measuredFigures.failed ? `, ${measuredFigures.failed} failed` : ''}`);
    }
    if (t && kinds.length) rssAfter(t, 'introspection');
  }

  // Client credentials: Tessera and stock oidc-provider in turns.
  const ccContenders: Contender[] = [];
  const ccBody = form({ grant_type: 'client_credentials', scope: 'read' });
  if (stock && wantStock('cc')) {
    ccContenders.push({ name: 'stock', server: 'stock', watched: stockWatched, run: fixedLoad({ url: `${stock.url}${TOKEN}`, headers: { authorization: stockService.authorization }, body: ccBody, expect: '"access_token"' }) });
  }
  if (t && f && want('cc')) {
    ccContenders.push({ name: 'tessera', server: 'tessera', watched: tesseraWatched, run: fixedLoad({ url: `${t.url}${TOKEN}`, headers: { authorization: f.service.authorization }, body: ccBody, expect: '"access_token"' }) });
  }
  if (c && want('cc')) {
    ccContenders.push({ name: 'compared', server: 'compared', watched: { serverPid: c.t.server.pid, redisPid }, run: fixedLoad({ url: `${c.t.url}${TOKEN}`, headers: { authorization: c.f.service.authorization }, body: ccBody, expect: '"access_token"' }) });
  }
  if (ccContenders.length) {
    progress(`client_credentials, in ${timing.runs} rounds: ${ccContenders.map((c) => c.name).join(', ')}`);
    const figures = await inRounds(timing, ccContenders, warmed);
    report.tokenEndpoint.clientCredentialsStock = figures.get('stock');
    report.tokenEndpoint.clientCredentialsTessera = figures.get('tessera');
    if (figures.has('compared')) comparison('client_credentials', figures.get('tessera')!, figures.get('compared')!);
    for (const [name, measuredFigures] of figures) progress(`  ${name}: ${measuredFigures.rps} req/s`);
    if (t && want('cc')) rssAfter(t, 'client_credentials');
  }

  // Refresh tokens: 32 rotating chains on each, in turns.
  const chains: ReturnType<typeof refreshChains>[] = [];
  if (stock && wantStock('refresh')) {
    const minted = (await (await fetch(`${stock.url}/bench/mint-refresh?count=${REFRESH_CHAINS}`, { method: 'POST' })).json()) as { refresh_tokens: string[] };
    chains.push(refreshChains('stock', stockWatched, stock.url, 'bench-cli', minted.refresh_tokens));
  }
  if (t && f && want('refresh')) {
    progress(`Tessera: ${REFRESH_CHAINS} device logins approved through the pages, for refresh tokens`);
    chains.push(refreshChains('tessera', tesseraWatched, t.url, f.deviceClientId, await mintRefreshTokens(t, f, REFRESH_CHAINS)));
  }
  if (c && want('refresh')) {
    progress(`compared Tessera: ${REFRESH_CHAINS} device logins approved through the pages, for refresh tokens`);
    chains.push(refreshChains('compared', { serverPid: c.t.server.pid, redisPid }, c.t.url, c.f.deviceClientId, await mintRefreshTokens(c.t, c.f, REFRESH_CHAINS)));
  }
  if (chains.length) {
    progress(`refresh_token, ${REFRESH_CHAINS} chains, in ${timing.runs} rounds: ${chains.map((c) => c.contender.name).join(', ')}`);
    const figures = await inRounds(timing, chains.map((c) => c.contender), warmed);
    for (const { contender, withChains } of chains) {
      const result = withChains(figures.get(contender.name)!);
      if (contender.name === 'stock') report.tokenEndpoint.refreshStock = result;
      else if (contender.name === 'compared') comparison('refresh_token', figures.get('tessera')!, result);
      else report.tokenEndpoint.refreshTessera = result;
      progress(`  ${contender.name}: ${result.rps} req/s (${result.chainsAlive} of ${result.chains} chains alive)`);
    }
    if (t && want('refresh')) rssAfter(t, 'refresh_token');
  }

  if (t && f) await measureTessera(t, f);
  // Each scale-out beside a fresh Tessera of its own: the one measured above carries the memory
  // section's 100,000 cached answers, which slow it down.
  if (t && f && want('workers')) {
    const one = await startTesseraUnderTest(undefined, 'Tessera, one process');
    const two = await startTesseraUnderTest(undefined, 'Tessera with two workers', { TESSERA_WORKERS: '2' });
    await measureScaleOut('workers', { label: 'one process', ...one }, { label: 'two workers', ...two });
    await Promise.all([one.stop(), two.stop()]);
  }
  if (t && f && want('metrics')) {
    const off = await startTesseraUnderTest(undefined, 'Tessera without metrics');
    const on = await startTesseraUnderTest(undefined, 'Tessera with metrics', { TESSERA_METRICS_PORT: '0' });
    await measureScaleOut('metrics', { label: 'metrics off', ...off }, { label: 'metrics on', ...on });
    await Promise.all([off.stop(), on.stop()]);
  }
  if (t && f && want('cluster')) {
    progress('a Redis Cluster of three masters (no replicas, as the single Redis has none): starting');
    const cluster = await startPrivateCluster({ replicas: 0 });
    const stopCluster = async () => {
      cleanups.delete(stopCluster);
      await cluster.stop();
    };
    cleanups.add(stopCluster);
    const onSingle = await startTesseraUnderTest(undefined, 'Tessera on the single Redis');
    const onCluster = await startTesseraUnderTest(undefined, 'Tessera on the Redis Cluster', {}, cluster.env);
    await measureScaleOut('cluster', { label: 'single Redis', ...onSingle }, { label: 'Redis Cluster', ...onCluster, redisPids: cluster.pids() });
    await Promise.all([onSingle.stop(), onCluster.stop()]);
    await stopCluster();
  }
}

interface ScaleOutSide {
  label: string;
  t: TesseraUnderTest;
  f: TesseraFixtures;
  /** The Redis processes it runs on, when not the machine's Redis. */
  redisPids?: number[];
}

/**
 * Tessera scaled out one way (two workers, or a Redis Cluster) beside a Tessera as it runs by
 * default, in the same rounds: introspection of an opaque and of a personal token (reads), and
 * client credentials (writes).
 */
async function measureScaleOut(name: 'workers' | 'cluster' | 'metrics', baseline: ScaleOutSide, variant: ScaleOutSide) {
  const requests = (side: ScaleOutSide): [string, FormRequest][] => [
    ['introspection, opaque token', { url: `${side.t.url}${INTROSPECT}`, headers: { authorization: side.f.resourceServer.authorization }, body: form({ token: side.f.tokens.opaque }), expect: ACTIVE }],
    ['introspection, personal token', { url: `${side.t.url}${INTROSPECT}`, headers: { authorization: side.f.resourceServer.authorization }, body: form({ token: side.f.tokens.personal }), expect: ACTIVE }],
    ['client_credentials', { url: `${side.t.url}${TOKEN}`, headers: { authorization: side.f.service.authorization }, body: form({ grant_type: 'client_credentials', scope: 'read' }), expect: '"access_token"' }],
  ];
  const contenders = [baseline, variant].flatMap((side) =>
    requests(side).map(([request, body]): Contender => ({
      name: `${side.label}: ${request}`,
      server: side.label,
      watched: { serverPid: side.t.server.pid, redisPid: side.redisPids ?? redisPid },
      run: fixedLoad(body),
    })),
  );
  progress(`${variant.label} beside ${baseline.label}, in ${timing.runs} rounds: ${contenders.map((c) => c.name).join(', ')}`);
  const figures = await inRounds(timing, contenders, warmed);
  const section = { baseline: baseline.label, variant: variant.label, figures: [] as { name: string; baseline: Measured; variant: Measured }[] };
  for (const [request] of requests(baseline)) {
    const here = figures.get(`${baseline.label}: ${request}`)!;
    const there = figures.get(`${variant.label}: ${request}`)!;
    section.figures.push({ name: request, baseline: here, variant: there });
    progress(`  ${request}: ${baseline.label} ${here.rps} req/s, ${variant.label} ${there.rps} req/s (${(there.rps / here.rps).toFixed(2)}×)`);
  }
  (report.scaleOut ??= {})[name] = section;
}

/** One figure of this tree beside the compared tree's, measured in the same rounds. */
function comparison(name: string, measuredHere: Measured, measuredThere: Measured) {
  (report.comparison ??= { root: compared!.root, figures: [] }).figures.push({ name, tessera: measuredHere, compared: measuredThere });
}

async function measureTessera(t: TesseraUnderTest, f: TesseraFixtures) {
  const watched: Watched = { serverPid: t.server.pid, redisPid };

  if (want('device')) {
    progress(`Tessera: device-code polling, ${PENDING_DEVICES} devices pending`);
    const codes = await bulk({ url: t.url, path: '/oauth/device/code', body: form({ client_id: f.deviceClientId, scope: 'read' }), count: PENDING_DEVICES, connections: 32, collect: 'device_code' });
    const input: DevicePollInput = {
      url: t.url,
      tokenPath: TOKEN,
      clientId: f.deviceClientId,
      deviceCodes: codes.collected,
      intervalSeconds: Number(t.env.TESSERA_DEVICE_POLL_INTERVAL),
      connections: DEVICE_POLL_CONNECTIONS,
      warmupSeconds: timing.warmupSeconds,
      runs: timing.runs,
      runSeconds: timing.runSeconds,
    };
    const { result, cpu } = await measured(watched, () => runChild<DevicePollResult>('bench/load/device-polls.ts', input));
    report.tokenEndpoint.devicePolling = {
      devices: PENDING_DEVICES,
      connections: DEVICE_POLL_CONNECTIONS,
      intervalSeconds: input.intervalSeconds,
      ...summarise(result.runs),
      cpu,
      burst: result.burst,
      answers: result.answers,
    };
    progress(
      `  device polls: ${report.tokenEndpoint.devicePolling.rps} polls/s; ${result.answers.authorizationPending} authorization_pending, ${result.answers.slowDown} slow_down, ` +
        `${result.answers.wrong} wrong, ${Object.values(result.answers.errors).reduce((a, b) => a + b, 0)} errors; burst of ${PENDING_DEVICES}: ${result.burst.authorizationPending} pending in ${result.burst.seconds} s`,
    );
    rssAfter(t, 'device polling');
  }

  if (want('login')) {
    const loginInput = (mode: LoginInput['mode']): LoginInput => ({
      url: t.url,
      users: f.stormUsers,
      connections: STORM_CONNECTIONS,
      mode,
      warmupSeconds: timing.warmupSeconds,
      runs: timing.runs,
      runSeconds: timing.runSeconds,
    });
    progress(`Tessera: password logins, ${STORM_CONNECTIONS} at once`);
    const { result: quiet, cpu } = await measured(watched, () => runChild<LoginResult>('bench/load/login-storm.ts', loginInput('timed')));
    report.passwordLogin.quiet = { ...summarise(quiet.runs), cpu, connections: STORM_CONNECTIONS, answers: quiet.answers };
    progress(`  logins: ${report.passwordLogin.quiet.rps}/s (answers ${JSON.stringify(quiet.answers)})`);
    rssAfter(t, 'logins');
    // Quiet and stormy introspection in turns: a run without the storm, then one with it, round
    // after round (the storm's own client starts 1 s before each stormy run and stops after it).
    progress(`Tessera: introspection (opaque) without and during a login storm, in ${timing.runs} rounds`);
    const introspectOpaque = fixedLoad({ url: `${t.url}${INTROSPECT}`, headers: { authorization: f.resourceServer.authorization }, body: form({ token: f.tokens.opaque }), expect: ACTIVE });
    const stormRuns: LoginResult[] = [];
    const figures = await inRounds(
      timing,
      [
        { name: 'quiet', server: 'tessera', watched, run: introspectOpaque },
        {
          name: 'storm',
          server: 'tessera',
          watched,
          async run(warmupSeconds) {
            const storm = startChild<LoginResult>('bench/load/login-storm.ts', loginInput('until-stopped'));
            try {
              await sleep(1000);
              return await introspectOpaque(warmupSeconds);
            } finally {
              storm.stop();
              stormRuns.push(await storm.result);
              // The hashes still queued run on: the next quiet run starts when they are done.
              if (!(await settle(t.server.pid))) progress('  warning: Tessera was still busy 10 s after the storm stopped');
            }
          },
        },
      ],
      warmed,
    );
    const quietIntrospection = figures.get('quiet')!;
    const during = figures.get('storm')!;
    const stormAnswers: Record<string, number> = {};
    for (const run of stormRuns) for (const [status, count] of Object.entries(run.answers)) stormAnswers[status] = (stormAnswers[status] ?? 0) + count;
    const stormSeconds = stormRuns.reduce((sum, run) => sum + run.seconds, 0);
    report.passwordLogin.storm = {
      introspection: during,
      quietIntrospectionRps: quietIntrospection.rps,
      fractionOfQuiet: Math.round((during.rps / quietIntrospection.rps) * 1000) / 1000,
      logins: { ...summarise(stormRuns.flatMap((run) => run.runs)), seconds: Math.round(stormSeconds * 10) / 10, answers: stormAnswers },
    };
    rssAfter(t, 'login storm');
    progress(`  introspection: quiet ${quietIntrospection.rps} req/s, during the storm ${during.rps} req/s = ${(report.passwordLogin.storm.fractionOfQuiet * 100).toFixed(0)}%; logins ${report.passwordLogin.storm.logins.rps}/s (answers ${JSON.stringify(stormAnswers)})`);
  }

  if (want('memory')) await measureMemory(t, f);
}

async function measureMemory(t: TesseraUnderTest, f: TesseraFixtures) {
  const usedBefore = await usedMemory(redis);
  // Access tokens: client credentials over HTTP, from a client of their own.
  progress(`Tessera: Redis bytes per item, ${MEMORY_ITEMS} of each`);
  let before = await prefixMemory(redis, t.prefix);
  await bulk({ url: t.url, path: TOKEN, headers: { authorization: f.memoryService.authorization }, body: form({ grant_type: 'client_credentials', scope: 'read' }), count: MEMORY_ITEMS, connections: 32, expect: '"access_token"' });
  let after = await prefixMemory(redis, t.prefix);
  report.memory.accessToken = perItem(before, after, MEMORY_ITEMS);

  // Sessions: through the session store itself (what a login stores), 10 per user.
  before = after;
  const userIds = Array.from({ length: MEMORY_ITEMS / 10 }, () => crypto.randomUUID());
  for (let i = 0; i < MEMORY_ITEMS; i += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, j) => t.core.sessions.create({ userId: userIds[(i + j) % userIds.length]!, scopes: ['read'], ip: '127.0.0.1', userAgent: 'tessera-bench/1.0' })),
    );
  }
  after = await prefixMemory(redis, t.prefix);
  report.memory.session = perItem(before, after, MEMORY_ITEMS);

  // Device codes: over HTTP.
  before = after;
  await bulk({ url: t.url, path: '/oauth/device/code', body: form({ client_id: f.deviceClientId, scope: 'read offline_access' }), count: MEMORY_ITEMS, connections: 32, expect: '"device_code"' });
  after = await prefixMemory(redis, t.prefix);
  report.memory.deviceCode = perItem(before, after, MEMORY_ITEMS);
  report.memory.redisUsedMemoryDeltaBytes = (await usedMemory(redis)) - usedBefore;
  rssAfter(t, 'memory items');
  progress(`  bytes per access token ${report.memory.accessToken.bytesPerItem}, per session ${report.memory.session.bytesPerItem}, per device code ${report.memory.deviceCode.bytesPerItem}`);

  // RSS with 100,000 live tokens: stored as Tessera stores a client-credentials token (a copy of a
  // real one's payload, through Tessera's own adapter), then each introspected once.
  progress(`Tessera: RSS with ${RSS_TOKENS} live access tokens`);
  const template = await clientCredentialsToken(t.url, f.memoryService);
  const stored = JSON.parse((await redis.get(`${t.prefix}${oidcKeyFor('ClientCredentials', template)}`))!) as Record<string, unknown>;
  const adapter = createOidcAdapterFactory(t.ephemeral)('ClientCredentials');
  const values: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < RSS_TOKENS; i += 1000) {
    const batch = Array.from({ length: 1000 }, () => randomBytes(32).toString('base64url'));
    await Promise.all(batch.map((id) => adapter.upsert(id, { ...stored, jti: id, iat: now, exp: now + 3600 }, 3600)));
    values.push(...batch);
  }
  const rssStored = processMemory(t.server.pid);
  // The V8 heap after a full collection, before and after the in-process cache fills: what an
  // introspection answer kept in memory costs (RSS also counts heap V8 has grown and kept).
  const heapStored = await heapAfterGc(t.server);
  const rssStoredAfterGc = processMemory(t.server.pid);
  const started = performance.now();
  const introspected = await bulk({ url: t.url, path: INTROSPECT, headers: { authorization: f.resourceServer.authorization }, bodies: values.map((token) => form({ token })), connections: 32, expect: ACTIVE });
  const seconds = (performance.now() - started) / 1000;
  const rssFull = processMemory(t.server.pid);
  const heapFull = await heapAfterGc(t.server);
  report.memory.rss = {
    liveTokens: RSS_TOKENS,
    rssBytesTokensStored: rssStored.rssBytes,
    rssBytesTokensStoredAfterFullGc: rssStoredAfterGc.rssBytes,
    v8HeapUsedBytesTokensStored: heapStored.usedHeapBytes,
    introspectionsPerSecondFirstSight: Math.round(introspected.ok / seconds),
    rssBytesAfterEachIntrospected: rssFull.rssBytes,
    rssBytesAfterEachIntrospectedAndFullGc: processMemory(t.server.pid).rssBytes,
    v8HeapUsedBytesAfterEachIntrospected: heapFull.usedHeapBytes,
    heapBytesPerCachedAnswer: Math.round((heapFull.usedHeapBytes - heapStored.usedHeapBytes) / RSS_TOKENS),
    peakRssBytes: processMemory(t.server.pid).peakRssBytes,
  };
  const r = report.memory.rss;
  progress(
    `  RSS ${mib(r.rssBytesTokensStored)} with the tokens stored (${mib(r.rssBytesTokensStoredAfterFullGc)} after a full GC; V8 heap ${mib(r.v8HeapUsedBytesTokensStored)}); ` +
      `each introspected once (${r.introspectionsPerSecondFirstSight}/s): RSS ${mib(r.rssBytesAfterEachIntrospected)} (${mib(r.rssBytesAfterEachIntrospectedAndFullGc)} after a full GC; ` +
      `V8 heap ${mib(r.v8HeapUsedBytesAfterEachIntrospected)}, ${r.heapBytesPerCachedAnswer} bytes per cached answer)`,
  );
}

// ---------------------------------------------------------------------------------------------
report.totalSeconds = Math.round((performance.now() - started) / 1000);
report.machine.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
report.targets = evaluateTargets(report);
await redis.quit();

const markdown = renderMarkdown(report);
mkdirSync(RESULTS, { recursive: true });
const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
// A run of some sections only is kept under its date, never as the latest (the README's table).
for (const name of SECTIONS.has('all') ? ['latest', stamp] : [stamp]) {
  writeFileSync(resolve(RESULTS, `${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(resolve(RESULTS, `${name}.md`), markdown);
}
process.stdout.write(`${markdown}\n`);
for (const target of report.targets) progress(`${target.pass ? 'PASS' : 'FAIL'}  ${target.name}: ${target.value} (target ${target.target})`);
progress(`done in ${report.totalSeconds} s; report in ${RESULTS}/${SECTIONS.has('all') ? 'latest' : stamp}.md and .json`);
