import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort } from '../support/private-redis.ts';
import { usePrivateSentinel, type PrivateSentinelOptions } from '../support/private-sentinel.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { createHarvesterAndRecordsApi, postAsClient } from '../support/token-requests.ts';

// Tessera on Redis through Sentinel (a master, a replica and three sentinels of this file's own):
// the master is killed, and Tessera answers 503 + Retry-After or the truth while the sentinels
// fail over, then follows the new master without a restart.

/** Generous bounds for a loaded machine: the sentinels act a second after the master is gone. */
const PROMOTION_TIMEOUT_MS = 60_000;
const RECOVERY_TIMEOUT_MS = 30_000;
/** No request may take longer than this (Tessera's command timeout is 2 s). */
const NO_HANG_MS = 10_000;

interface Answer {
  status: number;
  retryAfter: string | null;
  body: Record<string, unknown>;
}

describeFailover('Redis Sentinel failover', {});
// The same with TLS on the master, the replica and the sentinels, which ask for client certificates.
describeFailover('Redis Sentinel failover over TLS', { tls: { authClients: true } });

function describeFailover(title: string, options: PrivateSentinelOptions): void {
  // Outside the describe: its afterAll (stopping Tessera) runs before the set-up stops.
  const sentinel = usePrivateSentinel(options);
  describe(title, () => {
    let db: TestDatabase;
    let tessera: TestTessera;
    let issuer: URL;
    let secrets: Record<string, string> = {};

    const post = (path: string, clientId: string, form: Record<string, string>): Promise<Answer> => postAsClient(issuer, path, { id: clientId, secret: secrets[clientId]! }, form, NO_HANG_MS);
    const introspect = (token: string) => post('/oauth/introspect', 'records-api', { token });
    const issueToken = () => post('/oauth/token', 'harvester', { grant_type: 'client_credentials', scope: 'read' });

    beforeAll(async () => {
      db = await createTestDatabase();
      const port = await freePort();
      issuer = new URL(`http://127.0.0.1:${port}`);
      tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, ...sentinel().env });
      secrets = await createHarvesterAndRecordsApi(tessera.core);
    }, 60_000);
    afterAll(async () => {
      await tessera?.stop();
      await db?.drop();
    });

    it('answers 503 + Retry-After or the truth while the master is gone, and follows the new master without a restart', async () => {
      const issued = await issueToken();
      expect(issued.status).toBe(200);
      const kept = String(issued.body.access_token);
      const toRevoke = await issueToken();
      const revoked = String(toRevoke.body.access_token);
      expect((await post('/oauth/revoke', 'harvester', { token: revoked })).status).toBe(200);
      expect((await introspect(kept)).body.active).toBe(true);
      expect((await introspect(revoked)).body.active).toBe(false);
      expect(tessera.ephemeral.kind).toBe('redis');
      // Both the token and the revocation are on the replica before the master dies.
      await sentinel().waitForReplication();

      const old = await sentinel().killMaster();
      const promoted = sentinel().waitForNewMaster(old, PROMOTION_TIMEOUT_MS);
      let promotedYet = false;
      void promoted.then(() => (promotedYet = true), () => undefined);

      // Until the promotion: every answer is 503 + Retry-After, or right (never a wrong `active`).
      const seen = { unavailable: 0, answered: 0 };
      const expectUnavailableOrRight = (answer: Answer, active: boolean) => {
        if (answer.status === 503) {
          expect(answer.retryAfter).toMatch(/^\d+$/);
          seen.unavailable += 1;
        } else {
          expect({ status: answer.status, active: answer.body.active }).toEqual({ status: 200, active });
          seen.answered += 1;
        }
      };
      while (!promotedYet) {
        const [keptAnswer, revokedAnswer] = await Promise.all([introspect(kept), introspect(revoked)]);
        expectUnavailableOrRight(keptAnswer, true);
        expectUnavailableOrRight(revokedAnswer, false);
        const fresh = await issueToken();
        if (fresh.status === 503) {
          expect(fresh.retryAfter).toMatch(/^\d+$/);
          seen.unavailable += 1;
        } else {
          expect(fresh.status).toBe(200);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const master = await promoted;
      expect(master.port).not.toBe(old.port);

      // After it: the same Tessera issues tokens again, on the new master, within a generous bound.
      const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
      let fresh = await issueToken();
      while (fresh.status !== 200 && Date.now() < deadline) {
        expect(fresh.status).toBe(503);
        await new Promise((resolve) => setTimeout(resolve, 200));
        fresh = await issueToken();
      }
      expect(fresh.status).toBe(200);
      // The token issued before the kill was replicated: still active; the revoked one never is.
      const afterKept = await introspect(kept);
      expect({ status: afterKept.status, active: afterKept.body.active }).toEqual({ status: 200, active: true });
      const afterRevoked = await introspect(revoked);
      expect({ status: afterRevoked.status, active: afterRevoked.body.active }).toEqual({ status: 200, active: false });
      const afterFresh = await introspect(String(fresh.body.access_token));
      expect({ status: afterFresh.status, active: afterFresh.body.active }).toEqual({ status: 200, active: true });
      // A revocation on the new master holds at once.
      expect((await post('/oauth/revoke', 'harvester', { token: kept })).status).toBe(200);
      const keptRevoked = await introspect(kept);
      expect({ status: keptRevoked.status, active: keptRevoked.body.active }).toEqual({ status: 200, active: false });
      // The sentinels wait a second before they act: Tessera saw the master gone (its state is there).
      expect(seen.unavailable).toBeGreaterThan(0);
    }, PROMOTION_TIMEOUT_MS + RECOVERY_TIMEOUT_MS + 30_000);
  });
}
