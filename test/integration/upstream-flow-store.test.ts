import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { createMemoryEphemeralStore } from '../../src/store/ephemeral/memory-ephemeral-store.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { createFlowStore } from '../../src/identity-providers/flow-store.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';

// The state of an upstream sign-in is single-use and bound to its browser: of many callbacks
// racing with the same state, exactly one gets the flow (GETDEL); another browser gets nothing.

const FLOW = { provider: 'uni', codeVerifier: 'v'.repeat(43), nonce: 'n'.repeat(43), origin: { kind: 'settings' as const, next: '/settings/tokens' } };
const BROWSER = 'b'.repeat(43);

describe.each(['redis', 'memory'])('the upstream flow store on %s', (kind) => {
  const prefix = uniqueRedisPrefix();
  let ephemeral: EphemeralStore;

  beforeAll(async () => {
    ephemeral = kind === 'redis' ? await createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix: prefix, connectTimeoutMs: 10_000, commandTimeoutMs: 10_000 }) : createMemoryEphemeralStore();
  });
  afterAll(async () => {
    await ephemeral?.close();
    if (kind === 'redis') await dropRedisPrefix(prefix);
  });

  it('gives the flow to exactly one of 50 concurrent callbacks with its state', async () => {
    const flows = createFlowStore(ephemeral);
    const state = await flows.begin(FLOW, BROWSER);
    const results = await Promise.all(Array.from({ length: 50 }, () => flows.take(state, BROWSER)));
    expect(results.filter((r) => typeof r === 'object')).toEqual([{ ...FLOW, browser: expect.any(String) }]);
    expect(results.filter((r) => r === 'unknown')).toHaveLength(49);
  });

  it('refuses another browser, and the flow is spent by that attempt', async () => {
    const flows = createFlowStore(ephemeral);
    const state = await flows.begin(FLOW, BROWSER);
    expect(await flows.take(state, 'c'.repeat(43))).toBe('other_browser');
    expect(await flows.take(state, BROWSER)).toBe('unknown');
    const again = await flows.begin(FLOW, BROWSER);
    expect(await flows.take(again, undefined)).toBe('other_browser');
  });

  it('lets one address start 30 sign-ins a minute', async () => {
    const flows = createFlowStore(ephemeral);
    const answers = [];
    for (let i = 0; i < 31; i += 1) answers.push(await flows.allowStart('192.0.2.44'));
    expect(answers.filter(Boolean)).toHaveLength(30);
    expect(answers.at(-1)).toBe(false);
    expect(await flows.allowStart('192.0.2.45')).toBe(true);
  });

  it('knows no state it did not issue, and keeps no secret in the clear', async () => {
    const flows = createFlowStore(ephemeral);
    expect(await flows.take('x'.repeat(43), BROWSER)).toBe('unknown');
    expect(await flows.take('not a state', BROWSER)).toBe('unknown');
    const state = await flows.begin(FLOW, BROWSER);
    const raw = (await ephemeral.get(`idp:flow:${state}`))!;
    expect(raw).not.toContain(BROWSER);
  });
});
