import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { oidcDigest, oidcKeys } from '../../../../src/oauth/adapter/oidc-keys.ts';
import { createRefreshReuseGrace, openAnswer, RotationInFlight, type TokenAnswerBody } from '../../../../src/oauth/grants/refresh-reuse-grace.ts';
import { StoreUnavailableError } from '../../../../src/shared/errors.ts';
import { createMemoryEphemeralStore } from '../../../../src/store/ephemeral/memory-ephemeral-store.ts';

// The reuse grace on the in-process store (the Redis one passes the same store contract; both
// token paths run it in test/integration/refresh-token-grant.test.ts), with an injected clock. Two
// graces on one store stand for two nodes.
describe('refresh-token reuse grace', () => {
  const GRACE_S = 60;

  function setup() {
    let now = Date.UTC(2026, 11, 6);
    const clock = () => now;
    const store = createMemoryEphemeralStore({ clock });
    const nodes = [createRefreshReuseGrace({ store, graceSeconds: GRACE_S, clock }), createRefreshReuseGrace({ store, graceSeconds: GRACE_S, clock })] as const;
    /** A stored refresh token (its payload is all the grace looks at). */
    const token = async () => {
      const value = randomBytes(32).toString('base64url');
      await store.set(oidcKeys.payload('RefreshToken', oidcDigest(value)), '{}', { ttlMs: 3_600_000 });
      return value;
    };
    let issued = 0;
    const answerBody = (): TokenAnswerBody => ({ access_token: `at-${(issued += 1)}-${randomBytes(8).toString('hex')}`, expires_in: 3600, refresh_token: `rt-${issued}-${randomBytes(8).toString('hex')}`, scope: 'read', token_type: 'Bearer' });
    return { store, nodes, token, answerBody, advance: (ms: number) => (now += ms) };
  }

  it('rotates once; a retry within the grace gets the same answer, its lifetime counted from the rotation', async () => {
    const { nodes, token, answerBody, advance } = setup();
    const value = await token();
    const first = answerBody();
    let rotations = 0;
    const rotate = async () => ((rotations += 1), first);
    expect(await nodes[0].answer(value, 'cli', rotate)).toEqual(first);
    advance(GRACE_S * 1000 - 1000);
    expect(await nodes[1].answer(value, 'cli', rotate)).toEqual({ ...first, expires_in: 3600 - (GRACE_S - 1) });
    expect(await nodes[0].answer(value, 'cli')).toEqual({ ...first, expires_in: 3600 - (GRACE_S - 1) });
    expect(rotations).toBe(1);
  });

  it('answers null once the grace is over (the caller then detects reuse), however often it was replayed', async () => {
    const { nodes, token, answerBody, advance } = setup();
    const value = await token();
    const body = answerBody();
    await nodes[0].answer(value, 'cli', async () => body);
    advance(GRACE_S * 1000 - 1);
    expect(await nodes[0].answer(value, 'cli')).not.toBeNull();
    advance(1);
    let rotated = false;
    expect(await nodes[0].answer(value, 'cli', async () => ((rotated = true), answerBody()))).toBeNull();
    expect(rotated).toBe(false);
  });

  it('gives the answer to no other client, and not once the successor has been used or the login revoked', async () => {
    const { store, nodes, token, answerBody } = setup();
    const value = await token();
    const body = answerBody();
    await nodes[0].answer(value, 'cli', async () => body);
    expect(await nodes[0].answer(value, 'other-cli', async () => answerBody())).toBeNull();
    expect(await nodes[0].answer(value, 'cli')).toEqual(body);

    await store.set(oidcKeys.consumed('RefreshToken', oidcDigest(String(body.refresh_token))), '1', { ttlMs: 60_000 });
    expect(await nodes[0].answer(value, 'cli')).toBeNull();

    const revoked = await token();
    await nodes[0].answer(revoked, 'cli', async () => answerBody());
    await store.del(oidcKeys.payload('RefreshToken', oidcDigest(revoked)));
    expect(await nodes[0].answer(revoked, 'cli')).toBeNull();
  });

  it('keeps the answer encrypted under the old token only, for the grace and a margin, written once', async () => {
    const { store, nodes, token, answerBody } = setup();
    const value = await token();
    const body = answerBody();
    await nodes[0].answer(value, 'cli', async () => body);
    const key = oidcKeys.reuseAnswer(oidcDigest(value));
    const raw = (await store.get(key))!;
    for (const member of Object.values(body)) if (typeof member === 'string' && member.length > 8) expect(raw).not.toContain(member);
    const kept = JSON.parse(raw) as Parameters<typeof openAnswer>[1];
    expect(openAnswer(value, kept)).toEqual(body);
    expect(openAnswer(await token(), kept)).toBeNull();
    // Bound to its client and time: changing either opens nothing.
    expect(openAnswer(value, { ...kept, client: 'other-cli' })).toBeNull();
    expect(openAnswer(value, { ...kept, at: kept.at + 60_000 })).toBeNull();
    expect(await store.ttl(key)).toBeLessThanOrEqual(GRACE_S * 1000 + 5000);
  });

  it('makes concurrent refreshes on two nodes wait for the one rotation in flight, and share its answer', async () => {
    const { store, nodes, token, answerBody } = setup();
    const value = await token();
    const body = answerBody();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let rotations = 0;
    const rotate = async () => {
      rotations += 1;
      await held;
      return body;
    };
    const first = nodes[0].answer(value, 'cli', rotate);
    // The others come while the rotation is claimed and in flight (one of them with a consumed token: no rotate).
    while ((await store.get(oidcKeys.rotationClaim(oidcDigest(value)))) === null) await new Promise((resolve) => setImmediate(resolve));
    const others = [nodes[1].answer(value, 'cli', rotate), nodes[0].answer(value, 'cli', rotate), nodes[1].answer(value, 'cli')];
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    expect(await first).toEqual(body);
    for (const other of others) expect(await other).toEqual(body);
    expect(rotations).toBe(1);
  });

  it('lets the next refresh rotate when a rotation fails, and says "try again" when one does not finish in time', async () => {
    const { store, token, answerBody } = setup();
    const clock = () => Date.UTC(2026, 11, 6);
    const node = createRefreshReuseGrace({ store, graceSeconds: GRACE_S, clock, waitMs: 50 });
    const value = await token();
    await expect(node.answer(value, 'cli', async () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    const body = answerBody();
    expect(await node.answer(value, 'cli', async () => body)).toEqual(body);

    const stuck = await token();
    void node.answer(stuck, 'cli', () => new Promise<TokenAnswerBody>(() => {}));
    await expect(node.answer(stuck, 'cli', async () => answerBody())).rejects.toBeInstanceOf(RotationInFlight);
  });

  it('gives up the claim of a rotation that failed with the store as soon as the store answers again', async () => {
    const { store, token, answerBody } = setup();
    const clock = () => Date.UTC(2026, 11, 6);
    // The store goes away during the rotation (Redis killed): the claim was written, its release fails.
    let down = false;
    const flaky = new Proxy(store, {
      get: (target, name, receiver) => {
        const member = Reflect.get(target, name, receiver) as unknown;
        if (typeof member !== 'function') return member;
        return (...args: unknown[]) => (down ? Promise.reject(new Error('Redis is unavailable')) : (member as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
    const node = createRefreshReuseGrace({ store: flaky, graceSeconds: GRACE_S, clock, waitMs: 50 });
    const value = await token();
    await expect(
      node.answer(value, 'cli', async () => {
        down = true;
        throw new Error('Redis is unavailable');
      }),
    ).rejects.toThrow('unavailable');
    down = false;
    // The client retries with the same token once Redis is back: it is rotated, not left waiting
    // for a rotation that will never finish.
    const body = answerBody();
    const deadline = Date.now() + 2000;
    let answer: unknown;
    while (Date.now() < deadline) {
      answer = await node.answer(value, 'cli', async () => body).catch((error: unknown) => error);
      if (!(answer instanceof RotationInFlight)) break;
    }
    expect(answer).toEqual(body);
  });

  it('gives up a claim whose answer was lost with the store (written, then the store failed) once the store answers again', async () => {
    const { store, token, answerBody } = setup();
    const clock = () => Date.UTC(2026, 11, 6);
    // Redis ran the claim's SET, then died before its reply: the claim is there, the caller saw an error.
    let down = false;
    let claimLost = false;
    const flaky = new Proxy(store, {
      get: (target, name, receiver) => {
        const member = Reflect.get(target, name, receiver) as unknown;
        if (typeof member !== 'function') return member;
        return async (...args: unknown[]) => {
          if (down) throw new Error('Redis is unavailable');
          const result = await (member as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (name === 'set' && String(args[0]).endsWith(':rotation') && !claimLost) {
            claimLost = true;
            down = true;
            throw new Error('Redis is unavailable');
          }
          return result;
        };
      },
    });
    const node = createRefreshReuseGrace({ store: flaky, graceSeconds: GRACE_S, clock, waitMs: 50 });
    const value = await token();
    let rotated = false;
    await expect(node.answer(value, 'cli', async () => ((rotated = true), answerBody()))).rejects.toThrow('unavailable');
    expect(rotated).toBe(false);
    down = false;
    const body = answerBody();
    const deadline = Date.now() + 2000;
    let answer: unknown;
    while (Date.now() < deadline) {
      answer = await node.answer(value, 'cli', async () => body).catch((error: unknown) => error);
      if (!(answer instanceof RotationInFlight)) break;
    }
    expect(answer).toEqual(body);
  });

  it('takes back the consume of a rotation that the store failed after it, and only that one', async () => {
    const { store, token, answerBody } = setup();
    const clock = () => Date.UTC(2026, 11, 6);
    const node = createRefreshReuseGrace({ store, graceSeconds: GRACE_S, clock, waitMs: 50 });
    const consume = (value: string) => store.setIfAbsentAlongside(oidcKeys.consumed('RefreshToken', oidcDigest(value)), '1', oidcKeys.payload('RefreshToken', oidcDigest(value)), 60_000);
    const consumed = async (value: string) => (await store.get(oidcKeys.consumed('RefreshToken', oidcDigest(value)))) !== null;
    // On a Redis Cluster: the old token is consumed on its master, its successor's master is down.
    const value = await token();
    await expect(
      node.answer(value, 'cli', async () => {
        expect(await consume(value)).toBe('written');
        throw new StoreUnavailableError('Redis', 'Redis at cluster … is unavailable; SET was not run');
      }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    // The client never saw a successor: its retry is a first rotation, not a reuse.
    expect(await consumed(value)).toBe(false);
    const body = answerBody();
    expect(await node.answer(value, 'cli', async () => body)).toEqual(body);

    // A rotation that fails otherwise keeps what it consumed (oidc-provider decided).
    const refused = await token();
    await expect(
      node.answer(refused, 'cli', async () => {
        await consume(refused);
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(await consumed(refused)).toBe(true);

    // And a token consumed before the claim keeps its marker, whatever fails.
    const reused = await token();
    await consume(reused);
    await expect(
      node.answer(reused, 'cli', async () => {
        throw new StoreUnavailableError('Redis', 'Redis at cluster … is unavailable; DEL was not run');
      }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await consumed(reused)).toBe(true);
  });
});
