import type { DevicePollResult } from '../load/device-polls.ts';
import type { Machine } from './machine.ts';
import type { Measured } from './stats.ts';

type Kind = 'opaque' | 'jwt' | 'personal' | 'session' | 'unknown';
export type RefreshMeasured = Measured & { chains: number; chainsAlive: number; failures: Record<string, number> };
type PerItem = { items: number; keysPerItem: number; bytesPerItem: number };

export interface BenchReport {
  startedAt: string;
  totalSeconds: number;
  machine: Machine & { loadAverageAtEnd?: number[] };
  versions: Record<string, string>;
  settings: { connections: number; warmupSeconds: number; firstWarmupSeconds?: number; runs: number; runSeconds: number; loadGenerator: string; notes: string[] };
  /** `signed`: the opaque token's answer as an RFC 9701 JWT (no target: its cost is reported against the JSON answer). */
  introspection: { bare?: Measured; stock?: Measured; tessera?: Partial<Record<Kind, Measured>>; signed?: Measured };
  tokenEndpoint: {
    clientCredentialsTessera?: Measured;
    clientCredentialsStock?: Measured;
    refreshTessera?: RefreshMeasured;
    refreshStock?: RefreshMeasured;
    devicePolling?: Measured & { devices: number; connections: number; intervalSeconds: number; burst: DevicePollResult['burst']; answers: DevicePollResult['answers'] };
  };
  passwordLogin: {
    quiet?: Measured & { connections: number; answers: Record<string, number> };
    storm?: {
      introspection: Measured;
      quietIntrospectionRps: number;
      fractionOfQuiet: number;
      logins: Measured & { seconds: number; answers: Record<string, number> };
    };
  };
  memory: {
    tesseraRssAtStartBytes?: number;
    /** Tessera's RSS after each section of the run. */
    rssBytesAfter?: Record<string, number>;
    accessToken?: PerItem;
    session?: PerItem;
    deviceCode?: PerItem;
    redisUsedMemoryDeltaBytes?: number;
    rss?: {
      liveTokens: number;
      rssBytesTokensStored: number;
      rssBytesTokensStoredAfterFullGc: number;
      v8HeapUsedBytesTokensStored: number;
      introspectionsPerSecondFirstSight: number;
      rssBytesAfterEachIntrospected: number;
      rssBytesAfterEachIntrospectedAndFullGc: number;
      v8HeapUsedBytesAfterEachIntrospected: number;
      heapBytesPerCachedAnswer: number;
      peakRssBytes: number;
    };
  };
  targets: Target[];
  /** With BENCH_COMPARE_ROOT: this tree's figures beside the other checkout's, from the same rounds. */
  comparison?: { root: string; figures: { name: string; tessera: Measured; compared: Measured }[] };
  /** Tessera run another way (two workers; a Redis Cluster; metrics on) beside Tessera as it runs by default, from the same rounds. */
  scaleOut?: Partial<Record<'workers' | 'cluster' | 'metrics', ScaleOut>>;
}

export interface ScaleOut {
  baseline: string;
  variant: string;
  figures: { name: string; baseline: Measured; variant: Measured }[];
}

export interface Target {
  name: string;
  value: string;
  target: string;
  pass: boolean;
}

const KINDS: Kind[] = ['opaque', 'jwt', 'personal', 'session', 'unknown'];
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

/** Every target of issue 8 that this run measured. */
export function evaluateTargets(r: BenchReport): Target[] {
  const targets: Target[] = [];
  const tessera = r.introspection.tessera ?? {};
  for (const kind of KINDS) {
    const m = tessera[kind];
    if (!m) continue;
    if (r.introspection.bare) {
      const x = ratio(m.rps, r.introspection.bare.rps);
      targets.push({ name: `introspection ${kind} / bare`, value: `${x}×`, target: '≥ 1.0×', pass: x >= 1 && m.failed === 0 });
    }
    if (r.introspection.stock) {
      const x = ratio(m.rps, r.introspection.stock.rps);
      targets.push({ name: `introspection ${kind} / stock`, value: `${x}×`, target: '≥ 4×', pass: x >= 4 && m.failed === 0 });
    }
    targets.push({ name: `introspection ${kind} p99`, value: `${m.p99Ms} ms`, target: '≤ 5 ms', pass: m.p99Ms <= 5 });
  }
  const te = r.tokenEndpoint;
  if (te.clientCredentialsTessera && te.clientCredentialsStock) {
    const x = ratio(te.clientCredentialsTessera.rps, te.clientCredentialsStock.rps);
    targets.push({ name: 'client_credentials / stock', value: `${x}×`, target: '≥ 1.0×', pass: x >= 1 && te.clientCredentialsTessera.failed === 0 });
  }
  if (te.refreshTessera && te.refreshStock) {
    const x = ratio(te.refreshTessera.rps, te.refreshStock.rps);
    targets.push({ name: 'refresh_token / stock', value: `${x}×`, target: '≥ 1.0×', pass: x >= 1 && te.refreshTessera.failed === 0 });
  }
  if (te.devicePolling) {
    const { answers, burst } = te.devicePolling;
    const errors = Object.values(answers.errors).reduce((a, b) => a + b, 0);
    targets.push({
      name: `device polling, ${te.devicePolling.devices} pending`,
      value: `${answers.wrong} wrong, ${errors} errors/dropped`,
      target: 'every poll authorization_pending or slow_down, correctly; none dropped',
      pass: answers.wrong === 0 && errors === 0 && burst.authorizationPending === burst.devices,
    });
  }
  if (r.passwordLogin.storm) {
    const fraction = r.passwordLogin.storm.fractionOfQuiet;
    targets.push({ name: 'introspection during a login storm', value: `${Math.round(fraction * 100)}% of quiet`, target: '≥ 70%', pass: fraction >= 0.7 });
  }
  const onCluster = r.scaleOut?.cluster;
  for (const figure of onCluster?.figures ?? []) {
    const x = ratio(figure.variant.rps, figure.baseline.rps);
    targets.push({ name: `${figure.name} on a Redis Cluster / single Redis`, value: `${x}×`, target: '≥ 0.9×', pass: x >= 0.9 && figure.variant.failed === 0 });
  }
  for (const figure of r.scaleOut?.metrics?.figures.filter(({ name }) => name.startsWith('introspection')) ?? []) {
    const x = ratio(figure.variant.rps, figure.baseline.rps);
    targets.push({ name: `${figure.name} with metrics on / off`, value: `${x}×`, target: '≥ 0.95×', pass: x >= 0.95 && figure.variant.failed === 0 });
  }
  if (r.memory.accessToken) {
    const bytes = r.memory.accessToken.bytesPerItem;
    targets.push({ name: 'Redis bytes per live access token', value: `${bytes} B`, target: '≤ 600 B', pass: bytes <= 600 });
  }
  return targets;
}

const n = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : Math.round(value).toLocaleString('en-US'));
const ms = (value: number | undefined) => (value === undefined || Number.isNaN(value) ? '–' : value.toFixed(2));
const mib = (bytes: number | undefined) => (bytes === undefined ? '–' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);
const x = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '–' : `${ratio(a, b).toFixed(2)}×`);

/** How the runs were warmed up, as the report's header (and the progress line) says it. */
export function warmups(s: Pick<BenchReport['settings'], 'warmupSeconds' | 'firstWarmupSeconds'>): string {
  const each = s.warmupSeconds > 0 ? ` after ${s.warmupSeconds} s of warm-up` : '';
  return s.firstWarmupSeconds ? `${each} (${s.firstWarmupSeconds} s before the first run on each server)` : each;
}

/** The report as a markdown table (what the README shows). */
export function renderMarkdown(r: BenchReport): string {
  const lines: string[] = [];
  const { machine: m, versions: v, settings: s } = r;
  lines.push(`### Benchmark: ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`);
  lines.push('');
  lines.push(
    `${m.cores} cores (${m.cpuModel}), ${m.totalMemoryGiB} GiB; Node ${v.node}, Redis ${v.redis}, PostgreSQL ${v.postgres}, oidc-provider ${v['oidc-provider']}, ` +
      `Tessera ${v.tessera}; load: ${s.loadGenerator.startsWith('wrk') ? s.loadGenerator.split(' (')[0] : `autocannon ${v.autocannon}`}. Each figure: median of ${s.runs} runs of ${s.runSeconds} s${warmups(s)}, ` +
      `${s.connections} connections; one server loaded at a time, load from separate processes; figures compared as ratios measured in turns (a run of each, round after round, every other round in reverse). CPU in use before the run: ${m.cpuBusyAtStartPercent}%. The run took ${r.totalSeconds} s.`,
  );
  for (const note of s.notes) lines.push('', `> Note: ${note}`);
  lines.push('');

  const intro = r.introspection;
  const disturbed = disturbedFigures(r);
  if (disturbed.length) lines.push(`> Warning: other work on the machine took CPU during ${disturbed.join('; ')}: those figures are low. Run again on a quiet machine.`, '');
  if (intro.bare || intro.stock || intro.tessera) {
    lines.push('| introspection (32 connections) | req/s | p50 ms | p99 ms | ÷ bare | ÷ stock | CPU % server/load/Redis/other |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const kind of KINDS) {
      const t = intro.tessera?.[kind];
      if (!t) continue;
      lines.push(`| Tessera, ${kind === 'unknown' ? 'unknown token' : `${kind} token`} | ${n(t.rps)} | ${ms(t.p50Ms)} | ${ms(t.p99Ms)} | ${x(t.rps, intro.bare?.rps)} | ${x(t.rps, intro.stock?.rps)} | ${cpu(t)} |`);
    }
    if (intro.signed) {
      const json = intro.tessera?.opaque;
      lines.push(`| Tessera, opaque token, signed answer (RFC 9701${json ? `; ${x(intro.signed.rps, json.rps)} of the JSON answer` : ''}) | ${n(intro.signed.rps)} | ${ms(intro.signed.p50Ms)} | ${ms(intro.signed.p99Ms)} | ${x(intro.signed.rps, intro.bare?.rps)} | ${x(intro.signed.rps, intro.stock?.rps)} | ${cpu(intro.signed)} |`);
    }
    if (intro.bare) lines.push(`| bare node:http + one Redis GET | ${n(intro.bare.rps)} | ${ms(intro.bare.p50Ms)} | ${ms(intro.bare.p99Ms)} | 1.00× | | ${cpu(intro.bare)} |`);
    if (intro.stock) lines.push(`| stock oidc-provider, plain Redis adapter | ${n(intro.stock.rps)} | ${ms(intro.stock.p50Ms)} | ${ms(intro.stock.p99Ms)} | | 1.00× | ${cpu(intro.stock)} |`);
    lines.push('');
  }

  if (r.comparison) {
    lines.push(`| this tree ÷ ${r.comparison.root} (same rounds) | this tree /s | p99 ms | compared /s | p99 ms | ratio |`);
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const f of r.comparison.figures) lines.push(`| ${f.name} | ${n(f.tessera.rps)} | ${ms(f.tessera.p99Ms)} | ${n(f.compared.rps)} | ${ms(f.compared.p99Ms)} | ${x(f.tessera.rps, f.compared.rps)} |`);
    lines.push('');
  }

  for (const scaled of Object.values(r.scaleOut ?? {})) {
    lines.push(`| ${scaled.variant} ÷ ${scaled.baseline} (same rounds) | ${scaled.baseline} /s | p99 ms | ${scaled.variant} /s | p99 ms | ratio | CPU % ${scaled.baseline} · ${scaled.variant} (server/load/Redis/other) |`);
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const f of scaled.figures) lines.push(`| ${f.name} | ${n(f.baseline.rps)} | ${ms(f.baseline.p99Ms)} | ${n(f.variant.rps)} | ${ms(f.variant.p99Ms)} | ${x(f.variant.rps, f.baseline.rps)} | ${cpu(f.baseline)} · ${cpu(f.variant)} |`);
    lines.push('');
  }

  const te = r.tokenEndpoint;
  if (te.clientCredentialsTessera || te.refreshTessera || te.devicePolling || te.clientCredentialsStock) {
    lines.push('| token endpoint | Tessera /s | p99 ms | stock /s | p99 ms | Tessera ÷ stock | CPU % Tessera · stock (server/load/Redis/other) |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    const row = (name: string, t?: Measured, st?: Measured) =>
      (t || st) &&
      lines.push(`| ${name} | ${n(t?.rps)} | ${ms(t?.p99Ms)} | ${n(st?.rps)} | ${ms(st?.p99Ms)} | ${x(t?.rps, st?.rps)} | ${cpu(t)} · ${cpu(st)} |`);
    row('client_credentials (32 connections)', te.clientCredentialsTessera, te.clientCredentialsStock);
    row(`refresh_token (${te.refreshTessera?.chains ?? 32} rotating chains)`, te.refreshTessera, te.refreshStock);
    if (te.devicePolling) {
      const d = te.devicePolling;
      const errors = Object.values(d.answers.errors).reduce((a, b) => a + b, 0);
      lines.push(`| device-code polls (${n(d.devices)} pending, ${d.connections} connections, interval ${d.intervalSeconds} s) | ${n(d.rps)} | ${ms(d.p99Ms)} | | | | ${cpu(d)} |`);
      lines.push('');
      lines.push(
        `Device polling: first, all ${n(d.burst.devices)} devices polled at once (${d.burst.authorizationPending} answered authorization_pending in ${d.burst.seconds} s); ` +
          `then ${n(d.answers.authorizationPending)} authorization_pending and ${n(d.answers.slowDown)} slow_down answers, ${d.answers.wrong} of them wrong, ${errors} errors or dropped.`,
      );
    }
    lines.push('');
  }

  const pl = r.passwordLogin;
  if (pl.quiet || pl.storm) {
    lines.push('| password login | figure |');
    lines.push('| --- | ---: |');
    if (pl.quiet) lines.push(`| logins/s alone (${pl.quiet.connections} connections, configured argon2id), p99; CPU % server/load/Redis/other | ${n(pl.quiet.rps)}/s, ${ms(pl.quiet.p99Ms)} ms; ${cpu(pl.quiet)} |`);
    if (pl.quiet) lines.push(`| answers alone | ${answerText(pl.quiet.answers)} |`);
    if (pl.storm) {
      lines.push(
        `| introspection during the storm (opaque), p99; CPU % server/load/Redis/other (other: the storm's client) | ${n(pl.storm.introspection.rps)} req/s, ${ms(pl.storm.introspection.p99Ms)} ms; ${cpu(pl.storm.introspection)} |`,
      );
      lines.push(`| … as a fraction of quiet (${n(pl.storm.quietIntrospectionRps)} req/s) | ${(pl.storm.fractionOfQuiet * 100).toFixed(0)}% |`);
      lines.push(`| logins/s during the storm; answers | ${n(pl.storm.logins.rps)}/s; ${answerText(pl.storm.logins.answers)} |`);
    }
    lines.push('');
  }

  const mem = r.memory;
  if (mem.accessToken || mem.rss) {
    lines.push('| memory | Redis bytes per item | Redis keys per item |');
    lines.push('| --- | ---: | ---: |');
    if (mem.accessToken) lines.push(`| live access token (client credentials, ${n(mem.accessToken.items)}) | ${n(mem.accessToken.bytesPerItem)} | ${mem.accessToken.keysPerItem} |`);
    if (mem.session) lines.push(`| API session (${n(mem.session.items)}, 10 per user) | ${n(mem.session.bytesPerItem)} | ${mem.session.keysPerItem} |`);
    if (mem.deviceCode) lines.push(`| pending device code (${n(mem.deviceCode.items)}) | ${n(mem.deviceCode.bytesPerItem)} | ${mem.deviceCode.keysPerItem} |`);
    if (mem.rss) {
      const r = mem.rss;
      lines.push('');
      lines.push(`| Tessera process, ${n(r.liveTokens)} live access tokens | RSS | RSS after a full GC | V8 heap in use |`);
      lines.push('| --- | ---: | ---: | ---: |');
      lines.push(`| after start | ${mib(mem.tesseraRssAtStartBytes)} | | |`);
      lines.push(`| end of the run, the tokens stored in Redis | ${mib(r.rssBytesTokensStored)} | ${mib(r.rssBytesTokensStoredAfterFullGc)} | ${mib(r.v8HeapUsedBytesTokensStored)} |`);
      lines.push(`| … each introspected once (${n(r.introspectionsPerSecondFirstSight)}/s), answers cached | ${mib(r.rssBytesAfterEachIntrospected)} | ${mib(r.rssBytesAfterEachIntrospectedAndFullGc)} | ${mib(r.v8HeapUsedBytesAfterEachIntrospected)} |`);
      lines.push('');
      lines.push(`A cached introspection answer costs about ${n(r.heapBytesPerCachedAnswer)} bytes of heap; peak RSS ${mib(r.peakRssBytes)}.`);
    }
    if (mem.rssBytesAfter) {
      lines.push('');
      lines.push(`RSS after each section: ${Object.entries(mem.rssBytesAfter).map(([section, bytes]) => `${section} ${mib(bytes)}`).join(', ')}.`);
    }
    lines.push('');
  }

  if (r.targets.length) {
    lines.push('| target | measured | wanted | |');
    lines.push('| --- | ---: | --- | --- |');
    for (const t of r.targets) lines.push(`| ${t.name} | ${t.value} | ${t.target} | ${t.pass ? 'PASS' : '**FAIL**'} |`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

const cpu = (m: Measured | undefined) => (m?.cpu ? `${m.cpu.server}/${m.cpu.generator}/${m.cpu.redis}/${m.cpu.other}` : '–');

/** Figures during which other work took more than a quarter of a core. */
export function disturbedFigures(r: BenchReport): string[] {
  const figures: [string, Measured | undefined][] = [
    ['bare introspection', r.introspection.bare],
    ['stock introspection', r.introspection.stock],
    ...KINDS.map((kind): [string, Measured | undefined] => [`Tessera introspection (${kind})`, r.introspection.tessera?.[kind]]),
    ['Tessera introspection (signed answer)', r.introspection.signed],
    ['Tessera client_credentials', r.tokenEndpoint.clientCredentialsTessera],
    ['stock client_credentials', r.tokenEndpoint.clientCredentialsStock],
    ['Tessera refresh', r.tokenEndpoint.refreshTessera],
    ['stock refresh', r.tokenEndpoint.refreshStock],
    ['device polling', r.tokenEndpoint.devicePolling],
    ['logins', r.passwordLogin.quiet],
  ];
  return figures.filter(([, m]) => m?.cpu && m.cpu.other > 25).map(([name, m]) => `${name} (${m!.cpu!.other}% of a core)`);
}

function answerText(answers: Record<string, number>): string {
  return Object.entries(answers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) => `${count.toLocaleString('en-US')}× ${status}`)
    .join(', ');
}
