import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { storeUnavailableCause } from '../../shared/errors.ts';
import { oidcDigest, oidcKeys } from '../adapter/oidc-keys.ts';

// The refresh-token reuse grace: a rotated refresh token presented again within the grace gets the
// answer of its rotation again instead of revoking the login (a retry whose answer was lost, or
// concurrent refreshes of one token). Of concurrent refreshes one claims the rotation and the others
// wait for its answer. The answer is kept encrypted under a key derived from the old token's value,
// which Tessera does not keep: only someone presenting that token can read it, and only until the
// grace ends. After the grace the caller detects reuse as before (RFC 9700 §4.14.2). Design and
// reasoning: docs/design/oidc-adapter.md, "Refresh-token reuse grace".

/** A token response as it was sent (access_token, refresh_token, expires_in, …). */
export type TokenAnswerBody = Record<string, unknown>;

/** Thrown when a concurrent rotation of the same token did not finish within the wait: try again shortly. */
export class RotationInFlight extends Error {
  constructor() {
    super('a concurrent refresh of this refresh token is still being answered');
    this.name = 'RotationInFlight';
  }
}

export interface RefreshReuseGraceOptions {
  store: EphemeralStore;
  /** The grace in seconds (> 0). */
  graceSeconds: number;
  /** Milliseconds since the epoch: when a rotation happened, and whether its grace is over. Default Date.now. */
  clock?: () => number;
  /** How long a refresh waits for a concurrent rotation of its token to be answered (default 10 s). */
  waitMs?: number;
  /** Told when a rotation's answer could not be kept for the grace (the store failed). */
  onKeepFailed?: (error: unknown) => void;
}

export interface RefreshReuseGrace {
  /**
   * The answer to a refresh of `value` by `holder`, the (authenticated) client's id, with the
   * thumbprint of its DPoP key where the request has a proof: within the grace of its rotation,
   * that rotation's answer (waiting for it while it is in flight); otherwise, for a token not
   * rotated before, `rotate()`'s answer, which is then kept for the grace. Null when the token was
   * rotated and its grace is over, or its successor has been used since, or there is no answer
   * `holder` may have, or `rotate` is not given and nothing was kept: the caller then answers as
   * without a grace (reuse revokes the login).
   */
  answer(value: string, holder: string, rotate?: () => Promise<TokenAnswerBody>): Promise<TokenAnswerBody | null>;
}

/** Keys live this much longer than the grace in the store; the grace itself is decided by the clock. */
const STORE_MARGIN_MS = 5000;
const DEFAULT_WAIT_MS = 10_000;
const FIRST_PAUSE_MS = 5;
/** How often a claim that could not be given up (the store failing) is tried again. */
const RELEASE_RETRY_MS = 100;
const LONGEST_PAUSE_MS = 100;
const KEY_INFO = 'tessera refresh-token reuse grace answer';

/** A kept answer as stored: readable only with the old refresh token's value. */
interface KeptAnswer {
  /** When the rotation was claimed (clock, ms). */
  at: number;
  client: string;
  iv: string;
  /** AES-256-GCM ciphertext and tag, base64url. */
  data: string;
}

/** The AES-256 key of a token's kept answer: HKDF-SHA-256 of the token's value (never stored; its SHA-256 names the key). */
function keyOf(value: string): Buffer {
  return Buffer.from(hkdfSync('sha256', value, '', KEY_INFO, 32));
}

/** Binds the ciphertext to the client and time stored beside it. */
const associatedData = (client: string, at: number) => Buffer.from(`${client}\n${at}`);

export function sealAnswer(value: string, clientId: string, at: number, body: TokenAnswerBody): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(value), iv);
  cipher.setAAD(associatedData(clientId, at));
  const data = Buffer.concat([cipher.update(JSON.stringify(body), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  const kept: KeptAnswer = { at, client: clientId, iv: iv.toString('base64url'), data: data.toString('base64url') };
  return JSON.stringify(kept);
}

function parseKept(raw: string): KeptAnswer | null {
  try {
    const kept = JSON.parse(raw) as Partial<KeptAnswer>;
    if (typeof kept.at !== 'number' || typeof kept.client !== 'string' || typeof kept.iv !== 'string' || typeof kept.data !== 'string') return null;
    return kept as KeptAnswer;
  } catch {
    return null;
  }
}

/** The answer in a kept record, or null when `value` does not open it (or it was altered). */
export function openAnswer(value: string, kept: KeptAnswer): TokenAnswerBody | null {
  try {
    const data = Buffer.from(kept.data, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', keyOf(value), Buffer.from(kept.iv, 'base64url'));
    decipher.setAAD(associatedData(kept.client, kept.at));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
    return JSON.parse(plain) as TokenAnswerBody;
  } catch {
    return null;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createRefreshReuseGrace(options: RefreshReuseGraceOptions): RefreshReuseGrace {
  const { store } = options;
  const clock = options.clock ?? Date.now;
  const graceMs = options.graceSeconds * 1000;
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  if (!(graceMs > 0)) throw new RangeError('the refresh-token reuse grace must be positive (without one, use none)');
  const ttlMs = graceMs + STORE_MARGIN_MS;

  /** The kept answer, as sent then but with expires_in counting from now. */
  function replayed(body: TokenAnswerBody, elapsedMs: number): TokenAnswerBody {
    if (typeof body.expires_in !== 'number') return body;
    return { ...body, expires_in: Math.max(0, body.expires_in - Math.floor(elapsedMs / 1000)) };
  }

  /**
   * Claims to give up once the store answers again (claim key → the claim's time, the keys of its
   * slot the failed rotation wrote, and when it has expired anyway). A claim left behind by a store
   * failure would make every retry wait for a rotation that never finishes, until the grace is
   * over. One timer tries them all every RELEASE_RETRY_MS, stopping at the first failure (the store
   * is still away), and deletes a claim only while it is still the one taken then (another can
   * only follow it).
   */
  const pendingReleases = new Map<string, { at: number; alsoDelete: string[]; expiresAt: number }>();
  let releaseTimer: ReturnType<typeof setTimeout> | undefined;

  function releaseWhenBack(claimKey: string, at: number, alsoDelete: string[] = []): void {
    pendingReleases.set(claimKey, { at, alsoDelete, expiresAt: performance.now() + ttlMs });
    releaseTimer ??= setTimeout(releasePending, RELEASE_RETRY_MS).unref();
  }

  async function releasePending(): Promise<void> {
    for (const [claimKey, { at, alsoDelete, expiresAt }] of pendingReleases) {
      if (performance.now() >= expiresAt) {
        pendingReleases.delete(claimKey);
        continue;
      }
      try {
        if ((await store.get(claimKey)) === String(at)) await store.del(claimKey, ...alsoDelete);
        pendingReleases.delete(claimKey);
      } catch {
        break;
      }
    }
    releaseTimer = pendingReleases.size > 0 ? setTimeout(releasePending, RELEASE_RETRY_MS).unref() : undefined;
  }

  /**
   * Gives up the claim taken at `at` (the rotation failed), with `alsoDelete`, the keys of its slot
   * the failed rotation wrote; later, if the store fails now too.
   */
  async function releaseClaim(claimKey: string, at: number, alsoDelete: string[] = []): Promise<void> {
    try {
      await store.del(claimKey, ...alsoDelete);
    } catch (error) {
      releaseWhenBack(claimKey, at, alsoDelete);
      throw error;
    }
  }

  return {
    async answer(value, clientId, rotate) {
      const digest = oidcDigest(value);
      // All three share the token's hash tag: one MGET.
      const answerKey = oidcKeys.reuseAnswer(digest);
      const claimKey = oidcKeys.rotationClaim(digest);
      const consumedKey = oidcKeys.consumed('RefreshToken', digest);
      const keys = [answerKey, claimKey, oidcKeys.payload('RefreshToken', digest)];

      /**
       * Rotates under the claim taken at `at`, and keeps the answer for the grace. `unconsumed`:
       * the token had no consumed marker when the claim was taken.
       */
      async function rotateClaimed(issue: () => Promise<TokenAnswerBody>, at: number, unconsumed: boolean): Promise<TokenAnswerBody> {
        let body: TokenAnswerBody;
        try {
          body = await issue();
        } catch (error) {
          // Nothing was issued (or nothing can be answered): the next refresh tries for itself.
          // The rotation consumes the old token before it saves the successor, which on a Redis
          // Cluster may live on another master: when the store failed, the token may be marked
          // consumed with no successor the client ever saw, and its retry would read as reuse
          // (and revoke the login). So a marker written under this claim goes with it, in one
          // step (same hash tag); a token already consumed before the claim keeps its marker.
          await releaseClaim(claimKey, at, unconsumed && storeUnavailableCause(error) ? [consumedKey] : []);
          throw error;
        }
        // Kept once, never overwritten or extended: its grace counts from the claim. The answer goes
        // out without waiting for this write (one round trip less per refresh); a retry arriving
        // before it lands waits for it as for a rotation in flight. If it fails, the rotation
        // still stands: the retry then waits out the claim, and the client has its answer anyway.
        store.set(answerKey, sealAnswer(value, clientId, at, body), { ttlMs, onlyIfAbsent: true }).catch((error: unknown) => options.onKeepFailed?.(error));
        return body;
      }
      /** Takes the claim (null if another holds it), reading the consumed marker in the same round trip. */
      const claim = async (at: number): Promise<{ unconsumed: boolean } | null> => {
        try {
          const [claimed, consumed] = await Promise.all([store.set(claimKey, String(at), { ttlMs, onlyIfAbsent: true }), store.get(consumedKey)]);
          return claimed ? { unconsumed: consumed === null } : null;
        } catch (error) {
          // The store may have written the claim before its answer was lost: it is not this request's to keep.
          releaseWhenBack(claimKey, at);
          throw error;
        }
      };

      // The usual refresh first: a token nobody has claimed is claimed in one step.
      if (rotate) {
        const at = clock();
        const claimed = await claim(at);
        if (claimed) return rotateClaimed(rotate, at, claimed.unconsumed);
      }
      const waitUntil = performance.now() + waitMs;
      let pause = FIRST_PAUSE_MS;
      for (;;) {
        const [keptRaw = null, claimRaw = null, payload = null] = await store.getMany(keys);
        const now = clock();
        if (keptRaw !== null) {
          const kept = parseKept(keptRaw);
          // Over (or unreadable), revoked since (the old token went with its grant), or another client's.
          if (!kept || now - kept.at >= graceMs || payload === null || kept.client !== clientId) return null;
          const body = openAnswer(value, kept);
          if (!body) return null;
          // The client has used the successor, so it had the answer: this is reuse, not a retry.
          if (typeof body.refresh_token === 'string' && (await store.get(oidcKeys.consumed('RefreshToken', oidcDigest(body.refresh_token)))) !== null) return null;
          return replayed(body, now - kept.at);
        }
        if (claimRaw !== null) {
          // A rotation claimed longer ago than the grace that never kept its answer: no grace.
          if (now - Number(claimRaw) >= graceMs) return null;
          if (performance.now() >= waitUntil) throw new RotationInFlight();
          await sleep(pause);
          pause = Math.min(pause * 2, LONGEST_PAUSE_MS);
          continue;
        }
        if (!rotate) return null;
        // An unknown token claims nothing: the rotation only refuses it.
        if (payload === null) return rotate();
        const claimed = await claim(now);
        if (claimed) return rotateClaimed(rotate, now, claimed.unconsumed);
      }
    },
  };
}
