import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { hotCounter, hotHistogram } from './hot-metrics.ts';

// Prometheus metrics (prom-client), in a registry of Tessera's own: what the process serves and
// how long it takes, sign-ins, tokens issued and revoked, introspection answers, its cache and
// hashing queue, invalidation lag, store commands and errors, and Node's own figures (event-loop
// lag, heap, CPU). The composition root creates one registry
// per process and serves it on a listener of its own (metrics-listener.ts).
// Label values come from fixed sets only (route patterns, methods, status codes): never a path,
// a user or a token, which would both leak and grow without bound.

/** Latency buckets in seconds: introspection answers in well under a millisecond, a sign-in in tens. */
const REQUEST_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The methods counted by name; any other is counted as OTHER. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface IntrospectionCacheFigures {
  entries: number;
  hits: number;
  misses: number;
}

export interface HashingFigures {
  running: number;
  queued: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** One sign-in with a password: its channel (api, browser, oauth) and outcome (signed_in, failed, limited, busy). */
  signInAttempted(channel: string, outcome: string): void;
  /** One OAuth token saved or issued by oidc-provider, by its model (access_token, client_credentials, …). */
  tokenIssued(kind: string): void;
  /** One introspection answered: the credential's kind when active, null when inactive. */
  introspectionAnswered(activeKind: string | null): void;
  /** Where the password-hashing queue's figures are read from, at each scrape. */
  readHashing(read: () => HashingFigures): void;
  /** Counts one answered HTTP request of `route` (a pattern, e.g. /api/tokens/:id) and times it. */
  requestAnswered(route: string, method: string, status: number, seconds: number): void;
  /** Where the introspection cache's figures are read from, at each scrape. */
  readIntrospectionCache(read: () => IntrospectionCacheFigures): void;
  /** Credentials ended before their time (revoked, logged out, swept with a client or account), by kind. */
  credentialRevoked(kind: string): void;
  /** How long an invalidation took from the node that published it to this one. */
  invalidationArrived(lagSeconds: number): void;
  /** One command to a store (redis, postgres, pglite), its time, and whether it failed (error) or the store was unreachable (unavailable). */
  storeCommand(store: string, operation: string, seconds: number, outcome: 'ok' | 'error' | 'unavailable'): void;
}

/** Store commands take from well under a millisecond (a Redis GET) to seconds (a migration). */
const STORE_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Invalidations arrive in about a millisecond; seconds mean a node lags or clocks disagree. */
const LAG_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which Prometheus's linter (promtool check metrics) rejects; each
  // is the sum of the same figure by type, which stays (nodejs_active_handles{type}, …).
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const requests = hotCounter(registry, { name: 'tessera_http_requests_total', help: 'HTTP requests answered, by route pattern, method and status code.', labelNames: ['route', 'method', 'status'] });
  const durations = hotHistogram(registry, { name: 'tessera_http_request_duration_seconds', help: 'Time from a request received to its answer sent, by route pattern and method.', labelNames: ['route', 'method'], buckets: REQUEST_SECONDS_BUCKETS });

  // Figures read at each scrape from where the composition root says (nothing on the hot path).
  let readCache: (() => IntrospectionCacheFigures) | undefined;
  let readHashing: (() => HashingFigures) | undefined;
  const readAtScrape = (type: 'gauge' | 'counter', name: string, help: string, read: () => number | undefined) => {
    const collect = function (this: Gauge | Counter) {
      const value = read();
      if (value === undefined) return;
      if (this instanceof Gauge) this.set(value);
      else {
        this.reset();
        this.inc(value);
      }
    };
    return type === 'gauge' ? new Gauge({ name, help, registers: [registry], collect }) : new Counter({ name, help, registers: [registry], collect });
  };
  readAtScrape('gauge', 'tessera_introspection_cache_entries', 'Answers held by the introspection cache of this process.', () => readCache?.().entries);
  readAtScrape('counter', 'tessera_introspection_cache_hits_total', 'Credential checks answered from the introspection cache.', () => readCache?.().hits);
  readAtScrape('counter', 'tessera_introspection_cache_misses_total', 'Credential checks that went to the stores.', () => readCache?.().misses);
  readAtScrape('gauge', 'tessera_password_hashing_running', 'Password hashes running now.', () => readHashing?.().running);
  readAtScrape('gauge', 'tessera_password_hashing_queued', 'Password hashes waiting for a slot.', () => readHashing?.().queued);

  const signIns = hotCounter(registry, { name: 'tessera_sign_ins_total', help: 'Sign-ins with a password, by channel (api, browser, oauth) and outcome (signed_in, failed, limited: refused by a lockout, busy: hashing saturated).', labelNames: ['channel', 'outcome'] });
  const tokensIssued = hotCounter(registry, { name: 'tessera_oauth_tokens_issued_total', help: 'OAuth tokens and codes issued, by kind.', labelNames: ['kind'] });
  const introspections = hotCounter(registry, { name: 'tessera_introspection_answers_total', help: 'Introspection answers: active (by credential kind) or inactive.', labelNames: ['answer', 'kind'] });
  const inactive = introspections.labels('inactive', '');
  // Every introspection: the active answer's child by kind, without building a key each time.
  const activeByKind = new Map<string, { inc(): void }>();
  const revoked = hotCounter(registry, { name: 'tessera_credentials_revoked_total', help: 'Credentials ended before their time, by kind (access_token, refresh_token, client_credentials, grant: a login, session, personal_access_token, jwt_access_token).', labelNames: ['kind'] });
  const lag = hotHistogram(registry, { name: 'tessera_invalidation_lag_seconds', help: 'Time from an invalidation published on a node to its arrival here (includes any clock difference between nodes).', labelNames: [], buckets: LAG_SECONDS_BUCKETS }).labels();
  const storeTimes = hotHistogram(registry, { name: 'tessera_store_command_duration_seconds', help: 'Commands to the stores, by store (redis, postgres, pglite) and operation, and their time.', labelNames: ['store', 'operation'], buckets: STORE_SECONDS_BUCKETS });
  const storeErrors = hotCounter(registry, { name: 'tessera_store_errors_total', help: 'Store commands that failed, by store, operation and kind (error: refused by the store; unavailable: not reached or no answer in time).', labelNames: ['store', 'operation', 'kind'] });

  // Every request: its children found through nested maps, so that no key is built per request
  // (the hot metrics' labels() joins the values into one).
  type Children = { count: { inc(): void }; time: { observe(seconds: number): void } };
  const requestChildren = new Map<string, Map<string, Map<number, Children>>>();
  return {
    registry,
    requestAnswered(route, method, status, seconds) {
      const knownMethod = KNOWN_METHODS.has(method) ? method : 'OTHER';
      let byMethod = requestChildren.get(route);
      if (!byMethod) requestChildren.set(route, (byMethod = new Map()));
      let byStatus = byMethod.get(knownMethod);
      if (!byStatus) byMethod.set(knownMethod, (byStatus = new Map()));
      let children = byStatus.get(status);
      if (!children) {
        children = { count: requests.labels(route, knownMethod, String(status)), time: durations.labels(route, knownMethod) };
        byStatus.set(status, children);
      }
      children.count.inc();
      children.time.observe(seconds);
    },
    signInAttempted(channel, outcome) {
      signIns.labels(channel, outcome).inc();
    },
    tokenIssued(kind) {
      tokensIssued.labels(kind).inc();
    },
    introspectionAnswered(activeKind) {
      if (activeKind === null) inactive.inc();
      else {
        let active = activeByKind.get(activeKind);
        if (!active) activeByKind.set(activeKind, (active = introspections.labels('active', activeKind)));
        active.inc();
      }
    },
    readHashing(read) {
      readHashing = read;
    },
    readIntrospectionCache(read) {
      readCache = read;
    },
    credentialRevoked(kind) {
      revoked.labels(kind).inc();
    },
    invalidationArrived(lagSeconds) {
      lag.observe(Math.max(0, lagSeconds));
    },
    storeCommand(store, operation, seconds, outcome) {
      storeTimes.labels(store, operation).observe(seconds);
      if (outcome !== 'ok') storeErrors.labels(store, operation, outcome).inc();
    },
  };
}
