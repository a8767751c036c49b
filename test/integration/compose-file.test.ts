import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';

// compose.yaml as Compose itself reads it: `docker compose config` (Compose v2, the Docker CLI's
// plugin, from Debian's docker-compose package; .ci/run installs it) validates the file against
// the Compose specification, interpolates the variables and prints the normalised result, which
// needs no Docker daemon. The test then checks what a working deployment depends on in that
// output: two Tessera services whose environment the configuration loader accepts, health checks,
// start order, and nginx in front of exactly those two nodes.

const DOCKER = 'docker';
const ROOT = resolve('.');
const run = promisify(execFile);

interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string>;
  secrets?: { source: string; target?: string }[];
  volumes?: { type: string; source: string; target: string }[];
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  healthcheck?: { test: string[]; interval?: string; retries?: number };
  stop_grace_period?: string;
  ports?: { published: string; target: number }[];
  networks?: Record<string, { ipv4_address?: string } | null>;
}

interface ComposeModel {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
}

/** `docker compose config` of compose.yaml with `env`, parsed. */
async function composeConfig(env: Record<string, string> = {}): Promise<ComposeModel> {
  const { PATH, HOME, DOCKER_CONFIG } = process.env;
  try {
    const { stdout } = await run(DOCKER, ['compose', '--project-directory', ROOT, '-f', join(ROOT, 'compose.yaml'), 'config'], { env: { PATH, HOME, ...(DOCKER_CONFIG ? { DOCKER_CONFIG } : {}), ...env } });
    return parse(stdout) as ComposeModel;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT' || /'compose' is not a docker command|unknown command/.test(String((error as { stderr?: string }).stderr));
    if (missing) throw new Error('`docker compose` is missing: this test has Compose v2 read compose.yaml. .ci/run installs it (Debian\'s docker-compose package, from trixie).');
    throw error;
  }
}

/** The depends_on of a service as condition by service (Compose v2 adds `required: true` to each). */
const conditions = (service: Service) => Object.fromEntries(Object.entries(service.depends_on ?? {}).map(([name, { condition }]) => [name, condition]));

/** The published ports of a service as published → target. */
const published = (service: Service) => (service.ports ?? []).map((port) => ({ published: Number(port.published), target: port.target }));

/** A Compose duration (`20s`, `1m30s`) in milliseconds. */
function durationMs(value: string): number {
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h)/g)];
  expect(parts.map((part) => part[0]).join('')).toBe(value);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((total, [, amount, u]) => total + Number(amount) * unit[u as keyof typeof unit], 0);
}

/** The host file a service mounts at `target`. */
function mountedFrom(service: Service, target: string): string | undefined {
  return service.volumes?.find((volume) => volume.type === 'bind' && volume.target === target)?.source;
}

describe('compose.yaml, normalised by docker compose config', () => {
  let model: ComposeModel;
  let secretsDir: string;

  beforeAll(async () => {
    model = await composeConfig({ TESSERA_ISSUER: 'https://auth.example.org' });
    secretsDir = await mkdtemp(join(tmpdir(), 'tessera-compose-secrets-'));
  }, 60_000);

  afterAll(async () => {
    if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  });

  const tesseraNodes = () => Object.keys(model.services).filter((name) => name.startsWith('tessera-')).sort();

  it('has two Tessera nodes, nginx, PostgreSQL and Redis, each with a health check', () => {
    expect(Object.keys(model.services).sort()).toEqual(['nginx', 'postgres', 'redis', 'tessera-a', 'tessera-b']);
    for (const [name, service] of Object.entries(model.services)) {
      // The name goes with the answer, so that a failure says which service has no check.
      expect([name, (service.healthcheck?.test ?? []).length > 1]).toEqual([name, true]);
    }
    expect(model.services.postgres!.healthcheck!.test).toContain('pg_isready');
    expect(model.services.redis!.healthcheck!.test.join(' ')).toContain('redis-cli ping');
    expect(Object.keys(model.volumes).sort()).toEqual(['postgres-data', 'redis-data']);
  });

  it('builds both nodes from this repository, with one environment, checked ready at /readyz', () => {
    const [a, b] = tesseraNodes().map((name) => model.services[name]!);
    expect(a!.build?.context).toBe(ROOT);
    expect(b!.environment).toEqual(a!.environment);
    expect(b!.image).toBe(a!.image);
    for (const node of [a!, b!]) {
      expect(node.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:8080/readyz');
      // Tessera starts only once its stores answer.
      expect(conditions(node)).toEqual({ postgres: 'service_healthy', redis: 'service_healthy' });
    }
  });

  it('gives the nodes an environment the configuration loader accepts, secrets as files, the issuer from TESSERA_ISSUER', async () => {
    const node = model.services['tessera-a']!;
    const environment = node.environment!;
    expect(environment.ISSUER).toBe('https://auth.example.org');
    // No secret in the environment itself: each comes from a Compose secret, mounted under /run/secrets.
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'TESSERA_KEY_SECRET', 'TESSERA_COOKIE_KEYS']) {
      expect(environment[name]).toBeUndefined();
      const inside = environment[`${name}_FILE`];
      expect(inside).toMatch(/^\/run\/secrets\/[a-z-]+$/);
      const secret = inside!.slice('/run/secrets/'.length);
      expect(node.secrets).toContainEqual({ source: secret, target: inside });
      expect(model.secrets[secret]!.file).toBe(join(ROOT, 'deploy', 'secrets', secret));
    }
    // The node's TESSERA_CONFIG is this repository's production example.
    expect(mountedFrom(node, environment.TESSERA_CONFIG!)).toBe(join(ROOT, 'config', 'production.example.json'));

    // The environment as the node's loader sees it, with stand-ins for the secret files.
    const files: Record<string, string> = {
      'database-url': 'postgres://tessera:compose-db-password@postgres:5432/tessera\n',
      'redis-url': 'redis://:compose-redis-password@redis:6379\n',
      'key-secret': `${'k'.repeat(64)}\n`,
      'cookie-keys': `${'c'.repeat(64)}\n`,
    };
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(environment)) {
      if (name === 'TESSERA_CONFIG') env[name] = mountedFrom(node, value)!;
      else if (value.startsWith('/run/secrets/')) {
        const file = join(secretsDir, value.slice('/run/secrets/'.length));
        await writeFile(file, files[value.slice('/run/secrets/'.length)]!);
        env[name] = file;
      } else env[name] = value;
    }
    const config = loadConfig({ env });
    expect(config.issuer).toBe('https://auth.example.org');
    expect(config.database.url).toBe('postgres://tessera:compose-db-password@postgres:5432/tessera');
    expect(config.redis.url).toBe('redis://:compose-redis-password@redis:6379');
    expect(config.metrics.host).toBe('0.0.0.0');
    // Trusted: nginx's fixed address on the nodes' network, and nothing else.
    expect(config.http.trustProxy).toBe(model.services.nginx!.networks!.tessera!.ipv4_address);
    for (const name of tesseraNodes()) expect(Object.keys(model.services[name]!.networks!)).toEqual(['tessera']);
    // Stopped nodes get time to drain: Compose waits longer than Tessera's grace (and the supervisor's 5 s more).
    expect(durationMs(node.stop_grace_period!)).toBeGreaterThan(config.http.shutdownGraceMs + 5000);
  });

  it('puts nginx in front of exactly the two nodes, once they are ready, with the nginx configuration of deploy/', async () => {
    const nginx = model.services.nginx!;
    expect(conditions(nginx)).toEqual(Object.fromEntries(tesseraNodes().map((name) => [name, 'service_healthy'])));
    expect(published(nginx)).toContainEqual({ published: 443, target: 443 });
    const conf = mountedFrom(nginx, '/etc/nginx/conf.d/default.conf');
    expect(conf).toBe(join(ROOT, 'deploy', 'nginx', 'tessera.conf'));
    const upstream = /^upstream tessera \{([\s\S]*?)^\}/m.exec(await readFile(conf!, 'utf8'))?.[1] ?? '';
    const upstreams = [...upstream.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((match) => match[1]).sort();
    // Each node listens on the image's port (PORT=8080 in the Dockerfile).
    expect(upstreams).toEqual(tesseraNodes().map((name) => `${name}:8080`));
    expect(await readFile(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/PORT=8080/);
  });

  it('takes the issuer and the published ports from the environment, with defaults', async () => {
    const defaults = await composeConfig();
    expect(defaults.services['tessera-a']!.environment!.ISSUER).toBe('https://localhost');
    const moved = await composeConfig({ TESSERA_HTTPS_PORT: '8443', TESSERA_ISSUER: 'https://localhost:8443' });
    expect(published(moved.services.nginx!)).toContainEqual({ published: 8443, target: 443 });
    expect(moved.services['tessera-b']!.environment!.ISSUER).toBe('https://localhost:8443');
  });
});
