import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { approveDevice } from '../support/device-approval.ts';
import { startTopology, TOPOLOGIES, type RedisTopology } from '../support/redis-topologies.ts';
import { reportFigures } from '../support/resilience-figures.ts';
import { uniqueRedisPrefix } from '../support/services.ts';
import { closeCore, startTesseraNodes, type TesseraNodes } from '../support/tessera-nodes.ts';
import { basic, FORM } from '../support/token-requests.ts';

// Three Tessera processes on one store, under a steady background load of introspections and
// password logins on every node: a device login begun on node A, approved on node B and polled on
// node C; then credentials revoked on C must be answered inactive on A within 100 ms of the
// revocation's answer. A caches active answers for 60 s, so only the invalidation can end them in time.

/** The issue's bound: a revocation on one node is honoured by introspection on every other node within this. */
const PROPAGATION_BOUND_MS = 100;
/** How often the measuring poller sends a question to A (it does not wait for the answers). */
const POLL_EVERY_MS = 2;
/** The poller gives up after this long without an inactive answer (the test then fails). */
const POLL_FOR_MS = 5000;
/** Background load: request loops of introspections and of logins, each pausing this long between requests. */
const INTROSPECTION_WORKERS = 5;
const LOGIN_WORKERS = 1;
const LOAD_PAUSE_MS = 5;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Json {
  status: number;
  body: Record<string, unknown>;
}

async function send(base: string, path: string, init: { method?: string; body?: string | URLSearchParams; headers?: Record<string, string> } = {}): Promise<Json> {
  const res = await fetch(new URL(path, base), { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers: init.headers, body: init.body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A request of the load: true when its answer is the right one. */
type LoadRequest = () => Promise<boolean>;

/**
 * `workers` request loops over each group of requests until stopped; counts answers (and wrong
 * ones) per group, so the report can say what load ran.
 */
function startLoad(groups: Record<string, { workers: number; requests: LoadRequest[] }>) {
  let stopping = false;
  const counts: Record<string, { answered: number; wrong: number; perSecond?: number }> = {};
  const startedAt = performance.now();
  const loops = Object.entries(groups).flatMap(([name, { workers, requests }]) => {
    const count = (counts[name] = { answered: 0, wrong: 0 });
    return Array.from({ length: workers }, async (_, w) => {
      for (let i = w; !stopping; i++) {
        try {
          if (await requests[i % requests.length]!()) count.answered++;
          else count.wrong++;
        } catch {
          count.wrong++;
        }
        await new Promise((resolve) => setTimeout(resolve, LOAD_PAUSE_MS));
      }
    });
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      const seconds = (performance.now() - startedAt) / 1000;
      for (const count of Object.values(counts)) count.perSecond = Math.round(count.answered / seconds);
      return counts;
    },
  };
}

describe.each(TOPOLOGIES)('three Tessera nodes under load on %s Redis', (topologyName) => {
  let topology: RedisTopology;
  let cluster: TesseraNodes;
  let rsSecret: string;
  let load: ReturnType<typeof startLoad>;
  const password = `alice-${randomBytes(12).toString('base64url')}`;
  const loadPassword = `loader-${randomBytes(12).toString('base64url')}`;
  const figures: Record<string, unknown>[] = [];
  const a = () => cluster.nodes[0]!.url;
  const b = () => cluster.nodes[1]!.url;
  const c = () => cluster.nodes[2]!.url;

  const introspect = async (base: string, token: string) => {
    const answer = await send(base, '/oauth/introspect', { body: new URLSearchParams({ token }), headers: { ...FORM, authorization: basic('records-api', rsSecret) } });
    expect(answer.status).toBe(200);
    return answer.body;
  };
  const login = async (base: string, username: string, secret: string) => {
    const answer = await send(base, `/users/${username}/login`, { body: JSON.stringify({ password: secret }), headers: { 'content-type': 'application/json' } });
    expect(answer.status).toBe(200);
    return String(answer.body.session);
  };

  beforeAll(async () => {
    topology = await startTopology(topologyName);
    cluster = await startTesseraNodes(3, { ...topology.env, TESSERA_REDIS_PREFIX: uniqueRedisPrefix() }, {
      TESSERA_DEVICE_POLL_INTERVAL: '1',
      TESSERA_INTROSPECTION_CACHE_TTL: '60',
      // The load logs in far more often than a person: the per-address API limit is not under test.
      TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '1000000',
    });
    const core = await cluster.openCore();
    try {
      const by = { actor: 'test' };
      await core.accounts.createUser({ username: 'alice', password, scopes: ['read', 'deposit:write'] }, by);
      const loader = await core.accounts.createUser({ username: 'loader', password: loadPassword, scopes: ['read'] }, by);
      await core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
      rsSecret = (await core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
      // The load: introspections of personal tokens (active) and of a made-up one, on every node, and logins.
      const loadTokens = await Promise.all([1, 2, 3].map(async (n) => (await core.personalTokens.create(loader, { name: `load ${n}`, scopes: ['read'] }, by)).token));
      const introspections: LoadRequest[] = [];
      for (const node of cluster.nodes) {
        for (const token of loadTokens) introspections.push(async () => (await introspect(node.url, token)).active === true);
        introspections.push(async () => (await introspect(node.url, `tsr_pat_${'0'.repeat(38)}`)).active === false);
      }
      const logins = cluster.nodes.map((node) => async () => (await login(node.url, 'loader', loadPassword)).length > 0);
      load = startLoad({ introspections: { workers: INTROSPECTION_WORKERS, requests: introspections }, logins: { workers: LOGIN_WORKERS, requests: logins } });
    } finally {
      await closeCore(core);
    }
  }, 120_000);

  afterAll(async () => {
    const ran = load ? await load.stop() : undefined;
    if (ran) {
      reportFigures(
        `three nodes on ${topologyName}: revoked on C, answered inactive on A after ` +
          `${figures.map((f) => `${String(f.credential)} ${String(f.firstInactiveAnsweredMs)} ms (asked at ${String(f.firstInactiveSentMs)} ms, A's round trip before ${String(f.roundTripBeforeMs)} ms)`).join(', ')} ` +
          `(background load: ${Object.entries(ran).map(([name, n]) => `${name} ${String(n.perSecond)}/s, ${n.wrong} wrong`).join('; ')})`,
        { scenario: 'three-nodes', topology: topologyName, boundMs: PROPAGATION_BOUND_MS, revocations: figures, load: ran },
      );
    }
    await cluster?.stop();
    await topology?.stop();
  });

  /**
   * Makes sure A holds `token` as active (cached), revokes it on C, then questions A every
   * POLL_EVERY_MS without waiting for the answers, until one says inactive. Figures, counted from
   * the revocation's answer: when A's first inactive answer came, when the question it answered
   * was sent, when the last question answered active was sent, and how long A took to answer
   * before the revocation (what the machine's load adds to any answer).
   *
   * The bound holds A's state, not the machine's speed: the first inactive answer must answer a
   * question sent within PROPAGATION_BOUND_MS of the revocation's answer, and no question sent
   * after that may be answered active. On a machine loaded far past its cores, an answer may take
   * longer than the bound to come back even though A knew at once (firstInactiveSentMs 0).
   */
  async function revokedOnCInactiveOnA(credential: string, token: string, revoke: () => Promise<void>) {
    for (const node of [b(), c()]) expect(await introspect(node, token)).toMatchObject({ active: true });
    const roundTrips: number[] = [];
    for (let i = 0; i < 3; i++) {
      const sent = performance.now();
      expect(await introspect(a(), token)).toMatchObject({ active: true });
      roundTrips.push(performance.now() - sent);
    }
    await revoke();
    const revokedAt = performance.now();
    const asked: Promise<{ sentMs: number; answeredMs: number; active: boolean }>[] = [];
    let firstInactive: number | undefined;
    while (firstInactive === undefined && performance.now() - revokedAt < POLL_FOR_MS) {
      const sentMs = performance.now() - revokedAt;
      asked.push(
        introspect(a(), token).then((answer) => {
          const answeredMs = performance.now() - revokedAt;
          if (!answer.active) firstInactive ??= answeredMs;
          return { sentMs, answeredMs, active: answer.active === true };
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
    }
    const answers = await Promise.all(asked);
    const inactive = answers.filter((x) => !x.active);
    const active = answers.filter((x) => x.active);
    const tenth = (ms: number) => Math.round(ms * 10) / 10;
    const first = inactive.reduce<(typeof answers)[number] | undefined>((earliest, x) => (!earliest || x.answeredMs < earliest.answeredMs ? x : earliest), undefined);
    const figure = {
      credential,
      firstInactiveAnsweredMs: first ? tenth(first.answeredMs) : null,
      firstInactiveSentMs: first ? tenth(first.sentMs) : null,
      lastActiveSentMs: active.length ? tenth(Math.max(...active.map((x) => x.sentMs))) : null,
      roundTripBeforeMs: tenth(Math.min(...roundTrips)),
      questions: answers.length,
    };
    figures.push(figure);
    expect(first).toBeDefined();
    expect(figure.firstInactiveSentMs!).toBeLessThanOrEqual(PROPAGATION_BOUND_MS);
    expect(active.filter((x) => x.sentMs > PROPAGATION_BOUND_MS)).toEqual([]);
  }

  it('logs a device in across the nodes (begun on A, approved on B, polled on C), and a revocation of its access token on C holds on A within 100 ms', async () => {
    const started = await send(a(), '/oauth/device/code', { body: new URLSearchParams({ client_id: 'cli', scope: 'read offline_access' }), headers: FORM });
    expect(started.status).toBe(200);
    await approveDevice(cluster.issuer.origin, String(started.body.user_code), 'alice', password, 'approve', b());
    // The verification pages were B's (its request log), not the issuer's node A.
    await cluster.nodes[1]!.waitForLines(/"method":"POST","url":"\/device"/, 1, 10_000);
    expect(cluster.nodes[0]!.stdout()).not.toMatch(/"url":"\/device"/);
    let tokens: Json | undefined;
    const deadline = Date.now() + 30_000;
    while (!tokens) {
      const polled = await send(c(), '/oauth/token', { body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: String(started.body.device_code), client_id: 'cli' }), headers: FORM });
      if (polled.status === 200) tokens = polled;
      else {
        expect(polled.body.error).toMatch(/^(authorization_pending|slow_down)$/);
        if (Date.now() > deadline) throw new Error(`no tokens on C within 30 s: last answer ${JSON.stringify(polled.body)}`);
        await new Promise((resolve) => setTimeout(resolve, polled.body.error === 'slow_down' ? 1500 : 1000));
      }
    }
    const access = String(tokens.body.access_token);
    expect(tokens.body.refresh_token).toBeTruthy();
    expect(await introspect(b(), access)).toMatchObject({ active: true, username: 'alice', client_id: 'cli' });
    await revokedOnCInactiveOnA('access_token', access, async () => {
      const revoked = await send(c(), '/oauth/revoke', { body: new URLSearchParams({ token: access, client_id: 'cli' }), headers: FORM });
      expect(revoked.status).toBe(200);
    });
  }, 60_000);

  it('ends a personal token revoked on C (JSON API) on A within 100 ms', async () => {
    const session = await login(c(), 'alice', password);
    const created = await send(c(), '/api/v1/tokens', { body: JSON.stringify({ name: 'three nodes', scopes: ['read'] }), headers: { 'content-type': 'application/json', 'x-session': session } });
    expect(created.status).toBe(201);
    await revokedOnCInactiveOnA('personal_access_token', String(created.body.token), async () => {
      const revoked = await send(c(), `/api/v1/tokens/${String(created.body.id)}`, { method: 'DELETE', headers: { 'x-session': session } });
      expect(revoked.status).toBe(204);
    });
  });

  it('ends an API session logged out on C on A within 100 ms', async () => {
    const session = await login(b(), 'alice', password);
    await revokedOnCInactiveOnA('api_session', session, async () => {
      const out = await send(c(), '/logout', { method: 'POST', headers: { 'x-session': session } });
      expect(out.status).toBeLessThan(300);
    });
  });
});
