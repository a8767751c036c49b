import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// deploy/prometheus/tessera-alerts.yml, the alerting rules docs/production.md recommends: valid
// for Prometheus (`promtool check rules`), firing on the series of its unit tests and silent on
// the healthy ones (`promtool test rules`, Debian's prometheus package; .ci/run installs it), and
// written against metrics and route labels a running Tessera really serves, so that no rule
// waits for a series that never comes.

const RULES = resolve('deploy/prometheus/tessera-alerts.yml');
const RULE_TESTS = resolve('deploy/prometheus/tessera-alerts.test.yml');
const run = promisify(execFile);

async function promtool(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run('promtool', args);
    return `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failure.code === 'ENOENT') throw new Error('promtool is missing: install Debian\'s prometheus package (.ci/run does).');
    throw new Error(`promtool ${args.join(' ')} failed:\n${failure.stdout ?? ''}${failure.stderr ?? ''}`);
  }
}

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string; labels: { severity: string } }[] }[];
}

describe('the Prometheus alerting rules in deploy/prometheus/', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let rules: RuleFile['groups'][number]['rules'];

  beforeAll(async () => {
    rules = (parse(await readFile(RULES, 'utf8')) as RuleFile).groups.flatMap((group) => group.rules);
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_METRICS_PORT: '0' });
  }, 60_000);

  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('pass promtool check rules', async () => {
    expect(await promtool(['check', 'rules', RULES])).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('fire as their unit tests say, and only then (promtool test rules)', async () => {
    expect(await promtool(['test', 'rules', RULE_TESTS])).toMatch(/SUCCESS/);
    // Every alert has a unit test.
    const tested = new Set([...(await readFile(RULE_TESTS, 'utf8')).matchAll(/alertname: (\w+)/g)].map((match) => match[1]));
    const untested = rules.map((rule) => rule.alert).filter((alert) => !tested.has(alert));
    expect(untested).toEqual([]);
  });

  it('read only metrics and route labels that Tessera serves, each rule with a severity', async () => {
    // The two routes the rules name, answered once each so that their series exist.
    expect((await fetch(`${tessera.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${tessera.url}/oauth/introspect`, { method: 'POST' })).status).toBe(400);
    const text = await (await fetch(`${tessera.metricsUrl!}/metrics`)).text();
    const served = new Set<string>(['up']);
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      served.add(name!);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) served.add(`${name}${suffix}`);
    }
    for (const rule of rules) {
      expect(['critical', 'warning']).toContain(rule.labels.severity);
      const metrics = [...rule.expr.matchAll(/\b((?:tessera|nodejs|process)_[a-z0-9_]+|up)\{/g)].map((match) => match[1]!);
      expect(metrics.length).toBeGreaterThan(0);
      for (const metric of metrics) expect({ alert: rule.alert, metric, served: served.has(metric) }).toEqual({ alert: rule.alert, metric, served: true });
      for (const [, route] of rule.expr.matchAll(/route!?="([^"]+)"/g)) {
        expect({ alert: rule.alert, route, served: text.includes(`route="${route}"`) }).toEqual({ alert: rule.alert, route, served: true });
      }
    }
  });
});
