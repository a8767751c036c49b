import { createHash, randomBytes, randomInt } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { errors, type AdapterPayload } from 'oidc-provider';
import pino from 'pino';
import { createGrantCache } from '../../src/oauth/adapter/grant-cache.ts';
import { createOidcAdapterFactory, DEFAULT_TTL_SECONDS, DEVICE_CODE_GRACE_MS, type OidcAdapter } from '../../src/oauth/adapter/oidc-adapter.ts';
import { oidcConsumedKeyFor, oidcGrantKeyFor, oidcKeyFor } from '../../src/oauth/adapter/oidc-keys.ts';
import { findOidcToken } from '../../src/oauth/adapter/stored-payload.ts';
import { createInvalidations, invalidationTarget } from '../../src/cache/invalidations.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { dumpWrittenKeys, recording, slotPart, type StoreCall, type StoredKey } from '../support/stored-keys.ts';

export type { StoredKey };

export interface OidcAdapterFixture {
  store: EphemeralStore;
  /** Milliseconds since the epoch, shared by the store and the adapter, when time is injected. */
  clock?: () => number;
  /** Moves that clock forward. Without it, time passes for real. */
  advance?: (ms: number) => Promise<void>;
  /**
   * Every key the backend holds for this fixture, read from the backend itself (Redis: SCAN).
   * Without it, the suite lists the keys written through the store and asks the store for each.
   */
  dump?: () => Promise<StoredKey[]>;
  /** Another store on the same data, as a second node would have (Redis: its own connection). */
  openPeer?: () => Promise<EphemeralStore>;
  /** Closes the stores and removes everything they wrote. */
  cleanup: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Written independently of the adapter: SHA-256, base64url. */
function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

const tokenValue = () => randomBytes(32).toString('base64url');
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const userCodeValue = () => Array.from({ length: 8 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]).join('');

/**
 * What oidc-provider's storage adapter must do on every ephemeral store. `open` is called once per
 * test and gives a fresh, empty store.
 */
export function describeOidcAdapterContract(name: string, open: () => Promise<OidcAdapterFixture>) {
  describe(`oidc-provider adapter contract: ${name}`, () => {
    let fixture: OidcAdapterFixture;
    let calls: StoreCall[];
    let adapterFor: (model: string) => OidcAdapter;

    beforeEach(async () => {
      fixture = await open();
      calls = [];
      // Device codes without their grace period past expiry, so expiry is quick to observe; the
      // grace has a test of its own.
      adapterFor = createOidcAdapterFactory(recording(fixture.store, calls), { deviceCodeGraceMs: 0, ...(fixture.clock ? { clock: fixture.clock } : {}) });
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    const nowMs = () => (fixture.clock ?? Date.now)();
    const nowSeconds = () => Math.floor(nowMs() / 1000);

    function payload(kind: string, jti: string, fields: Partial<AdapterPayload> = {}, expiresIn = 3600): AdapterPayload {
      const iat = nowSeconds();
      return { iat, exp: iat + expiresIn, jti, kind, clientId: 'client-a', accountId: 'account-1', scope: 'openid', ...fields };
    }

    async function save(kind: string, fields: Partial<AdapterPayload> = {}, expiresIn = 3600) {
      const id = tokenValue();
      const body = payload(kind, id, fields, expiresIn);
      await adapterFor(kind).upsert(id, body, expiresIn);
      return { id, body };
    }

    /** Every key the backend holds, from the backend where the fixture can read it. */
    async function dump(): Promise<StoredKey[]> {
      return fixture.dump ? fixture.dump() : dumpWrittenKeys(fixture.store, calls);
    }

    /** Keys whose hash tag is the digest of a value. */
    async function keysTaggedWith(value: string): Promise<string[]> {
      const tag = sha256(value);
      return (await dump()).map((k) => k.key).filter((key) => slotPart(key) === tag);
    }

    /** Lets `ms` pass: the injected clock, or (Redis) polling until the condition holds. */
    async function passTime(ms: number, until: () => Promise<boolean>): Promise<void> {
      if (fixture.advance) {
        await fixture.advance(ms);
        return;
      }
      const deadline = Date.now() + ms + 3000;
      while (!(await until())) {
        if (Date.now() > deadline) throw new Error(`still there ${ms + 3000} ms later`);
        await sleep(50);
      }
    }

    /** Writes one of everything: grant-bound tokens, a device code with a user code, a session, a consumed code. */
    async function scenario() {
      const grantId = tokenValue();
      const otherGrantId = tokenValue();
      const userCode = userCodeValue();
      const uid = tokenValue();
      const accessToken = await save('AccessToken', { grantId });
      const refreshToken = await save('RefreshToken', { grantId }, 14 * 24 * 3600);
      const code = await save('AuthorizationCode', { grantId, codeChallenge: 'x', redirectUri: 'https://rp.example/cb' }, 60);
      const deviceCode = await save('DeviceCode', { grantId: otherGrantId, userCode }, 600);
      const session = await save('Session', { uid, authorizations: { 'client-a': { grantId, sid: 's' } } }, 3600);
      const grant = await save('Grant', {}, 3600);
      const clientCredentials = await save('ClientCredentials', { aud: 'https://api.example' }, 600);
      const interaction = await save('Interaction', { grantId, returnTo: 'https://issuer.example/auth' }, 600);
      await adapterFor('AuthorizationCode').consume(code.id);
      return { grantId, otherGrantId, userCode, uid, accessToken, refreshToken, code, deviceCode, session, grant, clientCredentials, interaction };
    }

    describe('payloads', () => {
      it('finds what it stored, with its id, and nothing for an unknown id', async () => {
        const { id, body } = await save('AccessToken', { grantId: 'g-1', extra: { tenant: 't' } });
        expect(await adapterFor('AccessToken').find(id)).toEqual(body);
        expect(await adapterFor('AccessToken').find(tokenValue())).toBeUndefined();
        expect(await adapterFor('RefreshToken').find(id)).toBeUndefined();
      });

      it('keeps models apart under the same id, and replaces a payload on upsert', async () => {
        const id = tokenValue();
        await adapterFor('AccessToken').upsert(id, payload('AccessToken', id, { scope: 'a' }), 3600);
        await adapterFor('RefreshToken').upsert(id, payload('RefreshToken', id, { scope: 'r' }), 3600);
        await adapterFor('AccessToken').upsert(id, payload('AccessToken', id, { scope: 'a2' }), 3600);
        expect((await adapterFor('AccessToken').find(id))?.scope).toBe('a2');
        expect((await adapterFor('RefreshToken').find(id))?.scope).toBe('r');
      });

      it('finds a token among several models in one round trip, with its model and consumed mark', async () => {
        const refresh = await save('RefreshToken', { grantId: 'g-2' });
        const lookups = calls.length;
        const found = await findOidcToken(recording(fixture.store, calls), refresh.id, ['AccessToken', 'ClientCredentials', 'RefreshToken']);
        expect(found).toEqual({ model: 'RefreshToken', payload: refresh.body });
        expect(calls.slice(lookups).map((call) => call.op)).toEqual(['getMany']);
        expect(await findOidcToken(fixture.store, refresh.id, ['AccessToken', 'ClientCredentials'])).toBeUndefined();
        expect(await findOidcToken(fixture.store, tokenValue(), ['AccessToken', 'RefreshToken'])).toBeUndefined();
        await adapterFor('RefreshToken').consume(refresh.id);
        expect((await findOidcToken(fixture.store, refresh.id, ['RefreshToken']))?.payload.consumed).toEqual(expect.any(Number));
      });

      it('returns a copy: changing it changes nothing stored', async () => {
        const { id } = await save('Grant', { openid: { scope: 'openid' } } as Partial<AdapterPayload>);
        const found = (await adapterFor('Grant').find(id))!;
        found.accountId = 'someone-else';
        expect((await adapterFor('Grant').find(id))?.accountId).toBe('account-1');
      });

      it('refuses to store clients, which come from PostgreSQL', () => {
        expect(() => adapterFor('Client')).toThrow(/clients/);
      });
    });

    describe('time to live', () => {
      it('gives every key it writes a TTL, the lifetime of what it belongs to', async () => {
        const s = await scenario();
        const held = await dump();
        // payloads (8) + the code's consumed marker + the user code and session uid lookups + two grant indexes + the client and account indexes
        expect(held.length).toBe(15);
        for (const { key, ttlMs } of held) {
          expect({ key, finite: Number.isFinite(ttlMs), positive: ttlMs > 0 }).toEqual({ key, finite: true, positive: true });
          expect(ttlMs).toBeLessThanOrEqual(14 * 24 * 3600 * 1000);
        }
        const ttlOf = (key: string) => held.find((k) => k.key === key)?.ttlMs ?? Number.NaN;
        const near = (key: string, seconds: number) => {
          expect(ttlOf(key)).toBeGreaterThan(seconds * 1000 - 5000);
          expect(ttlOf(key)).toBeLessThanOrEqual(seconds * 1000);
        };
        near(oidcKeyFor('AuthorizationCode', s.code.id), 60);
        near(oidcConsumedKeyFor('AuthorizationCode', s.code.id), 61); // outlives its payload by 1 s
        near(oidcKeyFor('DeviceCode', s.deviceCode.id), 600);
        near(oidcGrantKeyFor(s.otherGrantId), 600);
        // the grant's index lives as long as its longest-lived token, the refresh token
        near(oidcGrantKeyFor(s.grantId), 14 * 24 * 3600);
        // the lookups live as long as their payloads
        const lookups = held.filter((k) => k.key.includes('userCode') || k.key.includes(':uid:'));
        expect(lookups.map((k) => Math.round(k.ttlMs / 10_000)).sort((a, b) => a - b)).toEqual([60, 360]);
      });

      it('keeps a device code past its expiry for the grace period, so a late poll learns it expired', async () => {
        const withGrace = createOidcAdapterFactory(fixture.store);
        const id = tokenValue();
        const userCode = userCodeValue();
        await withGrace('DeviceCode').upsert(id, payload('DeviceCode', id, { userCode }, 600), 600);
        const ttlMs = (await fixture.store.ttl(oidcKeyFor('DeviceCode', id)))!;
        expect(ttlMs).toBeGreaterThan(600_000 + DEVICE_CODE_GRACE_MS - 5000);
        expect(ttlMs).toBeLessThanOrEqual(600_000 + DEVICE_CODE_GRACE_MS);
        expect(await withGrace('DeviceCode').findByUserCode(userCode)).toMatchObject({ jti: id });
      });

      it(`keeps a payload saved without expiresIn for ${DEFAULT_TTL_SECONDS / 86400} days at most`, async () => {
        for (const expiresIn of [undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
          const id = tokenValue();
          await adapterFor('InitialAccessToken').upsert(id, payload('InitialAccessToken', id), expiresIn);
          const [key] = await keysTaggedWith(id);
          const ttlMs = (await dump()).find((k) => k.key === key)!.ttlMs;
          expect(ttlMs).toBeLessThanOrEqual(14 * 24 * 3600 * 1000);
          expect(ttlMs).toBeGreaterThan(14 * 24 * 3600 * 1000 - 60_000);
        }
      });

      it('forgets a payload saved with no time left', async () => {
        const { id, body } = await save('Session', { uid: 'u-1' });
        await adapterFor('Session').upsert(id, body, 0);
        expect(await adapterFor('Session').find(id)).toBeUndefined();
        expect(await adapterFor('Session').findByUid('u-1')).toBeUndefined();
      });

      it('lets a payload, its marker and its lookups expire together', async () => {
        const grantId = tokenValue();
        const userCode = userCodeValue();
        const uid = tokenValue();
        const device = await save('DeviceCode', { grantId, userCode }, 1);
        const session = await save('Session', { uid }, 1);
        await adapterFor('DeviceCode').consume(device.id);
        expect(await adapterFor('DeviceCode').findByUserCode(userCode)).toMatchObject({ jti: device.id, consumed: expect.any(Number) });
        if (fixture.advance) {
          await fixture.advance(999);
          expect(await adapterFor('Session').findByUid(uid)).toMatchObject({ jti: session.id });
          expect((await dump()).length).toBe(8); // with the client index and the session's account index
        }
        const marker = oidcConsumedKeyFor('DeviceCode', device.id);
        await passTime(fixture.advance ? 1 : 1000, async () => (await dump()).every((k) => k.key === marker));
        expect(await adapterFor('DeviceCode').find(device.id)).toBeUndefined();
        expect(await adapterFor('DeviceCode').findByUserCode(userCode)).toBeUndefined();
        expect(await adapterFor('Session').findByUid(uid)).toBeUndefined();
        // The lookups and the grant index are gone with the payloads; the marker follows within 1 s.
        expect((await dump()).map((k) => k.key)).toEqual([marker]);
        await passTime(1000, async () => (await dump()).length === 0);
        expect(await dump()).toEqual([]);
      });

      it("never shortens a grant index: it outlives the grant's longest-lived token", async () => {
        const grantId = tokenValue();
        const short = await save('AccessToken', { grantId }, 60);
        const long = await save('RefreshToken', { grantId }, 7200);
        const later = await save('AuthorizationCode', { grantId }, 30);
        const ttl = (await dump()).find((k) => k.key === oidcGrantKeyFor(grantId))!.ttlMs;
        expect(ttl).toBeGreaterThan(7200_000 - 5000);
        if (fixture.advance) {
          await fixture.advance(61_000);
          expect(await adapterFor('AccessToken').find(short.id)).toBeUndefined();
          expect(await adapterFor('AuthorizationCode').find(later.id)).toBeUndefined();
        }
        await adapterFor('AccessToken').revokeByGrantId(grantId);
        expect(await adapterFor('RefreshToken').find(long.id)).toBeUndefined();
      });
    });

    describe('lookups', () => {
      it('finds a device code by its user code and a session by its uid, with their ids', async () => {
        const userCode = userCodeValue();
        const uid = tokenValue();
        const device = await save('DeviceCode', { userCode, params: { client_id: 'client-a', scope: 'openid' } }, 600);
        const session = await save('Session', { uid, loginTs: nowSeconds() });
        expect(await adapterFor('DeviceCode').findByUserCode(userCode)).toEqual(device.body);
        expect(await adapterFor('Session').findByUid(uid)).toEqual(session.body);
        expect(await adapterFor('DeviceCode').findByUserCode(userCodeValue())).toBeUndefined();
        expect(await adapterFor('Session').findByUid(tokenValue())).toBeUndefined();
      });

      it('follows a record whose user code changed, and a session whose id was reset', async () => {
        const device = await save('DeviceCode', { userCode: 'BBBBBBBB' }, 600);
        await adapterFor('DeviceCode').upsert(device.id, { ...device.body, userCode: 'CCCCCCCC' }, 600);
        expect(await adapterFor('DeviceCode').findByUserCode('BBBBBBBB')).toBeUndefined();
        expect((await adapterFor('DeviceCode').findByUserCode('CCCCCCCC'))?.jti).toBe(device.id);

        // Session.resetIdentifier: the old id is destroyed, the same uid saved under a new id.
        const uid = tokenValue();
        const old = await save('Session', { uid });
        const renewed = tokenValue();
        await adapterFor('Session').destroy(old.id);
        await adapterFor('Session').upsert(renewed, { ...old.body, jti: renewed }, 3600);
        expect((await adapterFor('Session').findByUid(uid))?.jti).toBe(renewed);
        expect(await adapterFor('Session').find(old.id)).toBeUndefined();
      });
    });

    describe('destroy', () => {
      it('removes the payload, its lookups and its grant index entry; the consumed marker lives out its TTL', async () => {
        const grantId = tokenValue();
        const userCode = userCodeValue();
        const device = await save('DeviceCode', { grantId, userCode }, 600);
        await adapterFor('DeviceCode').consume(device.id);
        const session = await save('Session', { uid: 'uid-destroyed' });
        expect((await dump()).length).toBe(8); // with the client index and the session's account index
        await adapterFor('DeviceCode').destroy(device.id);
        await adapterFor('Session').destroy(session.id);
        expect(await adapterFor('DeviceCode').find(device.id)).toBeUndefined();
        expect(await adapterFor('DeviceCode').findByUserCode(userCode)).toBeUndefined();
        expect(await adapterFor('Session').findByUid('uid-destroyed')).toBeUndefined();
        const left = await dump();
        expect(left.map((k) => k.key)).toEqual([oidcConsumedKeyFor('DeviceCode', device.id)]);
        expect(left[0]!.ttlMs).toBeGreaterThan(0);
        await adapterFor('DeviceCode').destroy(device.id); // again: nothing to do, no error
      });
    });

    describe('revokeByClientId', () => {
      it("removes every token of the client, and nothing of another client's", async () => {
        const mine = [await save('AccessToken', { clientId: 'gone' }), await save('RefreshToken', { clientId: 'gone', grantId: tokenValue() }), await save('ClientCredentials', { clientId: 'gone' })];
        const theirs = await save('AccessToken', { clientId: 'kept' });
        await adapterFor('AccessToken').revokeByClientId('gone');
        expect(await adapterFor('AccessToken').find(mine[0]!.id)).toBeUndefined();
        expect(await adapterFor('RefreshToken').find(mine[1]!.id)).toBeUndefined();
        expect(await adapterFor('ClientCredentials').find(mine[2]!.id)).toBeUndefined();
        expect(await adapterFor('AccessToken').find(theirs.id)).toMatchObject({ clientId: 'kept' });
      });
    });

    describe('revokeByAccountId', () => {
      it("removes the account's grants with what was issued under each, and its sessions; nothing of another account's", async () => {
        const grantId = tokenValue();
        await adapterFor('Grant').upsert(grantId, payload('Grant', grantId, { accountId: 'acct-gone', clientId: 'cli' }, 3600), 3600);
        const issued = [await save('AccessToken', { grantId, accountId: 'acct-gone' }), await save('RefreshToken', { grantId, accountId: 'acct-gone' })];
        const session = await save('Session', { accountId: 'acct-gone', uid: 'uid-gone' });
        const keptGrantId = tokenValue();
        await adapterFor('Grant').upsert(keptGrantId, payload('Grant', keptGrantId, { accountId: 'acct-kept', clientId: 'cli' }, 3600), 3600);
        const kept = [await save('AccessToken', { grantId: keptGrantId, accountId: 'acct-kept' }), await save('Session', { accountId: 'acct-kept', uid: 'uid-kept' })];

        expect(await adapterFor('Grant').revokeByAccountId('acct-gone')).toEqual({ grants: 1, sessions: 1 });
        expect(await adapterFor('Grant').find(grantId)).toBeUndefined();
        expect(await adapterFor('AccessToken').find(issued[0]!.id)).toBeUndefined();
        expect(await adapterFor('RefreshToken').find(issued[1]!.id)).toBeUndefined();
        expect(await adapterFor('Session').find(session.id)).toBeUndefined();
        expect(await adapterFor('Session').findByUid('uid-gone')).toBeUndefined();
        expect(await adapterFor('Grant').find(keptGrantId)).toMatchObject({ accountId: 'acct-kept' });
        expect(await adapterFor('AccessToken').find(kept[0]!.id)).toMatchObject({ grantId: keptGrantId });
        expect(await adapterFor('Session').find(kept[1]!.id)).toMatchObject({ accountId: 'acct-kept' });
        // Again: nothing left to end.
        expect(await adapterFor('Grant').revokeByAccountId('acct-gone')).toEqual({ grants: 0, sessions: 0 });
      });
    });

    describe('listAccountGrants and revokeAccountGrant', () => {
      it("lists an account's grants with scopes, approval and last token issued; revokes one with its tokens, and nothing else", async () => {
        const approved = nowSeconds() - 600;
        const grantId = tokenValue();
        await adapterFor('Grant').upsert(grantId, payload('Grant', grantId, { accountId: 'acct-1', clientId: 'cli', iat: approved, exp: approved + 3600, openid: { scope: 'openid offline_access' }, resources: { 'urn:api': 'read deposit:write' } }, 3600), 3600);
        const access = await save('AccessToken', { grantId, accountId: 'acct-1', iat: approved + 60 });
        const refresh = await save('RefreshToken', { grantId, accountId: 'acct-1', iat: approved + 120 });
        const otherGrantId = tokenValue();
        await adapterFor('Grant').upsert(otherGrantId, payload('Grant', otherGrantId, { accountId: 'acct-1', clientId: 'web', iat: approved - 60, openid: { scope: 'openid' } }, 3600), 3600);
        const otherAccess = await save('AccessToken', { grantId: otherGrantId, accountId: 'acct-1' });
        const strangerGrantId = tokenValue();
        await adapterFor('Grant').upsert(strangerGrantId, payload('Grant', strangerGrantId, { accountId: 'acct-2', clientId: 'cli', openid: { scope: 'openid' } }, 3600), 3600);
        await save('Session', { accountId: 'acct-1', uid: 'uid-1' });

        const listed = await adapterFor('Grant').listAccountGrants('acct-1');
        expect(listed).toEqual([
          { handle: sha256(grantId), clientId: 'cli', scopes: ['openid', 'offline_access', 'read', 'deposit:write'], approvedAt: new Date(approved * 1000), expiresAt: new Date((approved + 3600) * 1000), lastUsedAt: new Date((approved + 120) * 1000) },
          expect.objectContaining({ handle: sha256(otherGrantId), clientId: 'web', scopes: ['openid'] }),
        ]);
        // Never the grant id itself, nor a token.
        expect(JSON.stringify(listed)).not.toContain(grantId);

        // Another account's handle, a malformed one: nothing happens.
        expect(await adapterFor('Grant').revokeAccountGrant('acct-2', sha256(grantId))).toBe(false);
        expect(await adapterFor('Grant').revokeAccountGrant('acct-1', sha256(strangerGrantId))).toBe(false);
        expect(await adapterFor('Grant').revokeAccountGrant('acct-1', 'not a handle')).toBe(false);
        expect(await adapterFor('AccessToken').find(access.id)).toBeDefined();

        expect(await adapterFor('Grant').revokeAccountGrant('acct-1', sha256(grantId))).toBe(true);
        expect(await adapterFor('Grant').find(grantId)).toBeUndefined();
        expect(await adapterFor('AccessToken').find(access.id)).toBeUndefined();
        expect(await adapterFor('RefreshToken').find(refresh.id)).toBeUndefined();
        expect((await dump()).some((k) => k.key === oidcGrantKeyFor(grantId))).toBe(false);
        expect(await adapterFor('AccessToken').find(otherAccess.id)).toMatchObject({ grantId: otherGrantId });
        expect((await adapterFor('Grant').listAccountGrants('acct-1')).map((g) => g.clientId)).toEqual(['web']);
        expect((await adapterFor('Grant').listAccountGrants('acct-2')).map((g) => g.clientId)).toEqual(['cli']);
        // Again: already gone.
        expect(await adapterFor('Grant').revokeAccountGrant('acct-1', sha256(grantId))).toBe(false);
      });

      it("lists an account's provider sessions and ends one, with its uid lookup, and nothing of another account's", async () => {
        const loginTs = nowSeconds() - 300;
        const mine = await save('Session', { accountId: 'acct-1', uid: 'uid-mine', loginTs });
        const older = await save('Session', { accountId: 'acct-1', uid: 'uid-older', loginTs: loginTs - 600 });
        const theirs = await save('Session', { accountId: 'acct-2', uid: 'uid-theirs', loginTs });
        const grantId = tokenValue();
        await adapterFor('Grant').upsert(grantId, payload('Grant', grantId, { accountId: 'acct-1', clientId: 'cli' }, 3600), 3600);

        const listed = await adapterFor('Session').listAccountSessions('acct-1');
        expect(listed).toEqual([
          { handle: sha256(mine.id), signedInAt: new Date(loginTs * 1000), expiresAt: new Date(mine.body.exp! * 1000) },
          { handle: sha256(older.id), signedInAt: new Date((loginTs - 600) * 1000), expiresAt: new Date(older.body.exp! * 1000) },
        ]);
        expect(JSON.stringify(listed)).not.toContain(mine.id);

        expect(await adapterFor('Session').revokeAccountSession('acct-2', sha256(mine.id))).toBe(false);
        expect(await adapterFor('Session').revokeAccountSession('acct-1', sha256(theirs.id))).toBe(false);
        expect(await adapterFor('Session').revokeAccountSession('acct-1', sha256(grantId))).toBe(false);
        expect(await adapterFor('Session').revokeAccountSession('acct-1', sha256(mine.id))).toBe(true);
        expect(await adapterFor('Session').find(mine.id)).toBeUndefined();
        expect(await adapterFor('Session').findByUid('uid-mine')).toBeUndefined();
        expect((await adapterFor('Session').listAccountSessions('acct-1')).map((s) => s.handle)).toEqual([sha256(older.id)]);
        expect(await adapterFor('Session').find(theirs.id)).toMatchObject({ accountId: 'acct-2' });
        expect(await adapterFor('Grant').find(grantId)).toMatchObject({ accountId: 'acct-1' });
        expect(await adapterFor('Session').revokeAccountSession('acct-1', sha256(mine.id))).toBe(false);
      });

      it('ends cached answers about the revoked tokens and grant on every node', async () => {
        const published: string[] = [];
        const adapters = createOidcAdapterFactory(fixture.store, { invalidate: async (...targets) => void published.push(...targets) });
        const grantId = tokenValue();
        await adapters('Grant').upsert(grantId, payload('Grant', grantId, { accountId: 'acct-1', clientId: 'cli' }, 3600), 3600);
        const access = tokenValue();
        await adapters('AccessToken').upsert(access, payload('AccessToken', access, { grantId, accountId: 'acct-1' }), 3600);
        published.length = 0;
        expect(await adapters('Grant').revokeAccountGrant('acct-1', sha256(grantId))).toBe(true);
        expect(published).toEqual(expect.arrayContaining([invalidationTarget.oauthToken(sha256(access)), invalidationTarget.grant(grantId)]));
      });
    });

    describe('revokeByGrantId', () => {
      it("removes every artefact of the grant, whichever model asks, and nothing of another grant's", async () => {
        const grantId = tokenValue();
        const otherGrantId = tokenValue();
        const userCode = userCodeValue();
        const revoked = [
          ['AccessToken', await save('AccessToken', { grantId })],
          ['AccessToken', await save('AccessToken', { grantId })],
          ['RefreshToken', await save('RefreshToken', { grantId })],
          ['AuthorizationCode', await save('AuthorizationCode', { grantId }, 60)],
          ['DeviceCode', await save('DeviceCode', { grantId, userCode }, 600)],
          ['BackchannelAuthenticationRequest', await save('BackchannelAuthenticationRequest', { grantId }, 600)],
        ] as const;
        await adapterFor('AuthorizationCode').consume(revoked[3][1].id);
        const kept = [
          ['AccessToken', await save('AccessToken', { grantId: otherGrantId })],
          ['RefreshToken', await save('RefreshToken', { grantId: otherGrantId })],
          ['Grant', await save('Grant', {})],
          ['Interaction', await save('Interaction', { grantId })],
        ] as const;

        await adapterFor('RefreshToken').revokeByGrantId(grantId);

        for (const [model, { id }] of revoked) {
          expect({ model, found: await adapterFor(model).find(id) }).toEqual({ model, found: undefined });
          expect((await keysTaggedWith(id)).filter((key) => !key.endsWith(':consumed'))).toEqual([]);
        }
        expect(await adapterFor('DeviceCode').findByUserCode(userCode)).toBeUndefined();
        expect((await dump()).some((k) => k.key === oidcGrantKeyFor(grantId))).toBe(false);
        for (const [model, { id, body }] of kept) {
          expect(await adapterFor(model).find(id)).toEqual(body);
        }
        expect((await dump()).find((k) => k.key === oidcGrantKeyFor(otherGrantId))?.values).toHaveLength(2);
        await adapterFor('AccessToken').revokeByGrantId(grantId); // again: nothing to do, no error
      });
    });

    describe('prefetch', () => {
      it("answers as find does, and the next find of that id, by any of the factory's adapters, takes the answer without a read", async () => {
        const { id } = await save('RefreshToken', { grantId: 'grant-p' });
        const early = await adapterFor('RefreshToken').prefetch(id);
        expect(early).toMatchObject({ jti: id, grantId: 'grant-p' });
        const before = calls.length;
        const found = await adapterFor('RefreshToken').find(id);
        expect(found).toEqual(early);
        expect(found).not.toBe(early); // a copy: what one caller changes, the other does not see
        expect(calls.length).toBe(before);
        // taken once: the find after reads the store again
        expect(await adapterFor('RefreshToken').find(id)).toEqual(early);
        expect(calls.length).toBeGreaterThan(before);
        // an unknown id is prefetched as unknown
        expect(await adapterFor('RefreshToken').prefetch(tokenValue())).toBeUndefined();
      });

      it('is dropped when the artefact is consumed or destroyed meanwhile', async () => {
        const { id } = await save('RefreshToken', { grantId: 'grant-q' });
        await adapterFor('RefreshToken').prefetch(id);
        await adapterFor('RefreshToken').consume(id);
        expect((await adapterFor('RefreshToken').find(id))?.consumed).toEqual(expect.any(Number));
        await adapterFor('RefreshToken').prefetch(id);
        await adapterFor('RefreshToken').destroy(id);
        expect(await adapterFor('RefreshToken').find(id)).toBeUndefined();
      });
    });

    describe('consume', () => {
      it('marks the artefact consumed, once, for as long as the payload lives', async () => {
        const { id, body } = await save('DeviceCode', { userCode: userCodeValue() }, 600);
        const before = nowSeconds();
        await adapterFor('DeviceCode').consume(id);
        const found = await adapterFor('DeviceCode').find(id);
        expect(found).toEqual({ ...body, consumed: expect.any(Number) });
        expect(found!.consumed).toBeGreaterThanOrEqual(before);
        expect(found!.consumed).toBeLessThanOrEqual(nowSeconds());
        const ttls = await dump();
        const marker = ttls.find((k) => k.key === oidcConsumedKeyFor('DeviceCode', id))!;
        const payloadTtl = ttls.find((k) => k.key === oidcKeyFor('DeviceCode', id))!.ttlMs;
        // never shorter than the payload's (or it would become unused again), at most 1 s longer
        expect(marker.ttlMs).toBeGreaterThan(payloadTtl);
        expect(marker.ttlMs).toBeLessThanOrEqual(payloadTtl + 1100);

        const again = adapterFor('DeviceCode').consume(id);
        await expect(again).rejects.toThrow(errors.InvalidGrant);
        await expect(again).rejects.toMatchObject({ error: 'invalid_grant', error_detail: 'device code already consumed' });
        await expect(adapterFor('AuthorizationCode').consume(tokenValue())).rejects.toThrow(errors.InvalidGrant);
      });

      it('stays consumed when the payload is saved again, and the marker follows its new lifetime', async () => {
        const { id, body } = await save('RefreshToken', {}, 60);
        await adapterFor('RefreshToken').consume(id);
        const consumed = (await adapterFor('RefreshToken').find(id))!.consumed as number;
        // saved again as oidc-provider would (the found payload, consumed included) and without it
        await adapterFor('RefreshToken').upsert(id, { ...body, consumed }, 3600);
        await adapterFor('RefreshToken').upsert(id, body, 7200);
        expect((await adapterFor('RefreshToken').find(id))?.consumed).toBe(consumed);
        const marker = (await dump()).find((k) => k.key === oidcConsumedKeyFor('RefreshToken', id))!;
        expect(marker.ttlMs).toBeGreaterThan(7200_000 - 5000);
        await expect(adapterFor('RefreshToken').consume(id)).rejects.toThrow(errors.InvalidGrant);
      });

      it('takes a consumed payload saved by someone else as consumed', async () => {
        const id = tokenValue();
        await adapterFor('AuthorizationCode').upsert(id, { ...payload('AuthorizationCode', id), consumed: 1_900_000_000 }, 60);
        expect((await adapterFor('AuthorizationCode').find(id))?.consumed).toBe(1_900_000_000);
        await expect(adapterFor('AuthorizationCode').consume(id)).rejects.toThrow(errors.InvalidGrant);
      });

      it("ends a refresh token's cached answers everywhere before it resolves, marked consumed by then", async () => {
        const { id } = await save('RefreshToken', { grantId: tokenValue() }, 600);
        const published: string[][] = [];
        let release!: () => void;
        const delivered = new Promise<void>((resolve) => (release = resolve));
        const adapters = createOidcAdapterFactory(fixture.store, {
          invalidate: async (...targets) => {
            published.push(targets);
            await delivered;
          },
        });
        let settled = false;
        const consumed = adapters('RefreshToken').consume(id).then(() => (settled = true));
        await sleep(50);
        expect(published).toEqual([[invalidationTarget.oauthToken(sha256(id))]]);
        expect(settled).toBe(false);
        expect((await adapterFor('RefreshToken').find(id))?.consumed).toEqual(expect.any(Number));
        release();
        await consumed;
        expect(settled).toBe(true);
        await expect(adapters('RefreshToken').consume(id)).rejects.toThrow(errors.InvalidGrant);
      });

      it.each([
        ['DeviceCode', 'device code'],
        ['RefreshToken', 'refresh token'],
        ['AuthorizationCode', 'authorization code'],
      ])('lets exactly one of 50 concurrent redemptions of a %s through', async (model, label) => {
        const { id } = await save(model, { grantId: tokenValue(), ...(model === 'DeviceCode' ? { userCode: userCodeValue() } : {}) }, 600);
        // Several nodes where the backend has them: each its own store (and connection).
        const nodes = [adapterFor];
        if (fixture.openPeer) {
          for (let i = 0; i < 4; i += 1) nodes.push(createOidcAdapterFactory(await fixture.openPeer()));
        }
        const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => nodes[i % nodes.length]!(model).consume(id)));
        const fulfilled = results.filter((r) => r.status === 'fulfilled');
        const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(fulfilled).toHaveLength(1);
        expect(rejected).toHaveLength(49);
        for (const { reason } of rejected) {
          expect(reason).toBeInstanceOf(errors.InvalidGrant);
          expect((reason as errors.InvalidGrant).error_detail).toBe(`${label} already consumed`);
        }
        expect((await adapterFor(model).find(id))?.consumed).toEqual(expect.any(Number));
      });
    });

    describe('grants in memory (createGrantCache)', () => {
      /** A node: its own store where the backend has them, its invalidations, cache and adapters. */
      async function node(store: EphemeralStore) {
        const storeCalls: StoreCall[] = [];
        const recorded = recording(store, storeCalls);
        const invalidations = createInvalidations(recorded, pino({ level: 'silent' }));
        const grants = createGrantCache(recorded, fixture.clock ? { clock: fixture.clock } : {});
        const subscription = await invalidations.subscribe(grants);
        grants.channelState('up');
        const adapters = createOidcAdapterFactory(recorded, { invalidate: invalidations.publish, grants, ...(fixture.clock ? { clock: fixture.clock } : {}) });
        const reads = () => storeCalls.filter((call) => call.op === 'get' || call.op === 'getMany').length;
        return { adapters, grants, reads, close: () => subscription.close() };
      }

      /** Waits for another node's message (Redis pub/sub is asynchronous). */
      async function eventually(check: () => Promise<boolean>) {
        const deadline = Date.now() + 3000;
        while (!(await check())) {
          if (Date.now() > deadline) throw new Error('the change never reached the other node');
          await sleep(20);
        }
      }

      it("reads a grant once, then from memory, and drops its copy when any node saves, revokes or destroys it", async () => {
        const first = await node(fixture.store);
        const second = await node(fixture.openPeer ? await fixture.openPeer() : fixture.store);
        const id = tokenValue();
        const body = payload('Grant', id, { openid: { scope: 'openid' } });
        await second.adapters('Grant').upsert(id, body, 3600);

        expect(await first.adapters('Grant').find(id)).toEqual(body);
        // Once the save's own message has come by, reads are answered from memory.
        await eventually(async () => {
          const readsBefore = first.reads();
          await first.adapters('Grant').find(id);
          return first.reads() === readsBefore;
        });
        const copy = await first.adapters('Grant').find(id);
        expect(copy).toEqual(body);
        copy!.accountId = 'changed by the caller';
        expect(await first.adapters('Grant').find(id)).toEqual(body); // each caller its own copy

        const widened = { ...body, openid: { scope: 'openid offline_access' } };
        await second.adapters('Grant').upsert(id, widened, 3600);
        await eventually(async () => isDeepStrictEqual(await first.adapters('Grant').find(id), widened));

        await second.adapters('RefreshToken').revokeByGrantId(id);
        const readsAfterRevoke = first.reads();
        await eventually(async () => (await first.adapters('Grant').find(id)) !== undefined && first.reads() > readsAfterRevoke);

        await second.adapters('Grant').destroy(id);
        await eventually(async () => (await first.adapters('Grant').find(id)) === undefined);
        await Promise.all([first.close(), second.close()]);
      });

      it("drops a client's grants from every node's memory when its tokens are revoked", async () => {
        const first = await node(fixture.store);
        const second = await node(fixture.openPeer ? await fixture.openPeer() : fixture.store);
        const id = tokenValue();
        await second.adapters('Grant').upsert(id, payload('Grant', id, { clientId: 'client-gone' }), 3600);
        expect(await first.adapters('Grant').find(id)).toBeDefined();
        await second.adapters('AccessToken').revokeByClientId('client-gone');
        await eventually(async () => (await first.adapters('Grant').find(id)) === undefined);
        await Promise.all([first.close(), second.close()]);
      });

      it('never remembers a missing grant, never answers one past its expiry, and reads the store while the channel is down', async () => {
        const one = await node(fixture.store);
        const id = tokenValue();
        expect(await one.adapters('Grant').find(id)).toBeUndefined();
        // Saved by a node without the cache: no message, yet the next read finds it.
        const body = payload('Grant', id, {}, 1);
        await createOidcAdapterFactory(fixture.store)('Grant').upsert(id, body, 3600);
        expect(await one.adapters('Grant').find(id)).toEqual(body);
        await passTime(1100, async () => (await one.adapters('Grant').find(id)) === undefined);
        expect(await one.adapters('Grant').find(id)).toBeUndefined();

        const other = tokenValue();
        const kept = payload('Grant', other);
        await one.adapters('Grant').upsert(other, kept, 3600);
        one.grants.channelState('down');
        const before = one.reads();
        expect(await one.adapters('Grant').find(other)).toEqual(kept);
        expect(await one.adapters('Grant').find(other)).toEqual(kept);
        expect(one.reads()).toBe(before + 2);
        await one.close();
      });
    });

    describe('key names', () => {
      it('never contain a token, code, user code, session uid or grant id', async () => {
        const s = await scenario();
        await adapterFor('DeviceCode').findByUserCode(s.userCode);
        await adapterFor('Session').findByUid(s.uid);
        await adapterFor('AccessToken').find(s.accessToken.id);
        const secrets = [
          s.grantId,
          s.otherGrantId,
          s.userCode,
          s.uid,
          ...[s.accessToken, s.refreshToken, s.code, s.deviceCode, s.session, s.grant, s.clientCredentials, s.interaction].map((t) => t.id),
        ];
        const held = (await dump()).map((k) => k.key);
        const touched = calls.flatMap((c) => c.keys);
        expect(held.length).toBeGreaterThan(0);
        for (const key of [...held, ...touched]) {
          for (const secret of secrets) expect({ key, containsSecret: key.includes(secret) }).toEqual({ key, containsSecret: false });
        }
        // every value the scenario wrote is found by its digest
        for (const secret of [s.accessToken.id, s.code.id, s.userCode, s.uid, s.grantId]) {
          expect(held.some((key) => slotPart(key) === sha256(secret))).toBe(true);
        }
      });

      it('keep access tokens, refresh tokens and authorization codes out of the stored values too', async () => {
        const s = await scenario();
        const values = (await dump()).flatMap((k) => k.values).join('\n');
        for (const token of [s.accessToken, s.refreshToken, s.code, s.clientCredentials]) {
          expect(values.includes(token.id)).toBe(false);
        }
        // found again with their ids all the same
        expect((await adapterFor('RefreshToken').find(s.refreshToken.id))?.jti).toBe(s.refreshToken.id);
      });

      it('put keys used together under one hash tag (Redis Cluster slot)', async () => {
        const s = await scenario();
        await adapterFor('AuthorizationCode').find(s.code.id);
        await adapterFor('DeviceCode').findByUserCode(s.userCode);
        await adapterFor('DeviceCode').consume(s.deviceCode.id);
        await adapterFor('Session').findByUid(s.uid);
        await adapterFor('Session').destroy(s.session.id);
        await adapterFor('AccessToken').revokeByGrantId(s.grantId);
        await adapterFor('DeviceCode').revokeByGrantId(s.otherGrantId);

        const multiKey = calls.filter((c) => c.keys.length > 1);
        expect(multiKey.length).toBeGreaterThan(2);
        for (const call of multiKey) {
          expect({ call, slots: new Set(call.keys.map(slotPart)).size }).toEqual({ call, slots: 1 });
        }
        // a payload and its marker share the digest of the id as their tag
        const tag = sha256(s.code.id);
        expect([oidcKeyFor('AuthorizationCode', s.code.id), oidcConsumedKeyFor('AuthorizationCode', s.code.id)].map(slotPart)).toEqual([tag, tag]);
        // and every key has a tag of its own (no key hashes on its whole name)
        for (const key of new Set(calls.flatMap((c) => c.keys))) expect(slotPart(key)).not.toBe(key);
      });
    });
  });
}
