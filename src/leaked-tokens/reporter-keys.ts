import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';

// The public keys a secret scanner signs its reports with, read from the URL it publishes them at
// (GitHub: https://api.github.com/meta/public_keys/secret_scanning) and kept in memory. A key id
// not among them makes the keys be read again, at most once per `refreshMs` whatever the ids
// presented, and one read at a time: forged ids cost the reporter's endpoint nothing more.

/** The document at a reporter's keys URL (GitHub's shape); other fields are ignored. */
const keysDocumentSchema = z.object({
  public_keys: z
    .array(z.object({ key_identifier: z.string().min(1).max(256), key: z.string().min(1).max(10_000), is_current: z.boolean().optional() }))
    .max(100),
});

/** A key id as a header may carry one: what GitHub uses (64 hex digits) and a margin. */
export const KEY_ID = /^[A-Za-z0-9._:+/=-]{1,256}$/;

/** The longest keys document read. */
const MAX_DOCUMENT_BYTES = 262_144;

export class KeysUnavailableError extends Error {}

export interface ReporterKeysOptions {
  /** The reporter's name, for the log. */
  name: string;
  keysUrl: string;
  logger: Logger;
  /** The fewest milliseconds between two reads caused by unknown key ids. */
  refreshMs: number;
  /** How long keys read are used before they are read again. */
  maxAgeMs: number;
  /** How long one read may take. */
  timeoutMs?: number;
  clock?: () => number;
}

export interface ReporterKeys {
  /**
   * Whether `signature` (base64 DER ECDSA) over `body` verifies with the key `keyId`: 'valid',
   * 'invalid', or 'unknown_key' (not published, even after reading the keys again where allowed).
   * Throws KeysUnavailableError when the keys could not be read and the id is not known.
   */
  verify(keyId: string, signature: Buffer, body: Buffer): Promise<'valid' | 'invalid' | 'unknown_key'>;
  /** How many times the keys were read (for tests and the log). */
  readonly reads: number;
}

/** Only EC P-256 keys are used: the partner format is ECDSA-NIST-P256V1-SHA256. */
function p256Key(pem: string): KeyObject | null {
  try {
    const key = createPublicKey({ key: pem, format: 'pem' });
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : null;
  } catch {
    return null;
  }
}

export function createReporterKeys(options: ReporterKeysOptions): ReporterKeys {
  const { name, keysUrl, logger, refreshMs, maxAgeMs, timeoutMs = 5000, clock = Date.now } = options;
  let keys = new Map<string, KeyObject>();
  /** When keys were last read successfully; null before. */
  let readAt: number | null = null;
  /** When a read was last started (successful or not): the bound on reads. */
  let attemptedAt: number | null = null;
  let inFlight: Promise<void> | null = null;
  let reads = 0;

  async function read(): Promise<void> {
    attemptedAt = clock();
    reads += 1;
    let text: string;
    try {
      const response = await fetch(keysUrl, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      if (response.status !== 200) throw new Error(`answered ${response.status}`);
      text = await response.text();
    } catch (error) {
      throw new KeysUnavailableError(`could not read the keys of ${name} at ${keysUrl}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new KeysUnavailableError(`the keys document of ${name} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    let document: z.infer<typeof keysDocumentSchema>;
    try {
      document = keysDocumentSchema.parse(JSON.parse(text));
    } catch {
      throw new KeysUnavailableError(`the keys document of ${name} at ${keysUrl} is not { public_keys: [{ key_identifier, key }] }`);
    }
    const next = new Map<string, KeyObject>();
    for (const entry of document.public_keys) {
      const key = p256Key(entry.key);
      if (key) next.set(entry.key_identifier, key);
      else logger.warn({ reporter: name, keyId: entry.key_identifier }, 'ignored a reporter key that is not an EC P-256 public key');
    }
    keys = next;
    readAt = clock();
    logger.info({ reporter: name, keys: next.size }, 'read the leaked-token reporter keys');
  }

  /** Reads the keys unless a read is under way (then waits for it). */
  function readOnce(): Promise<void> {
    inFlight ??= read().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  /**
   * The key of this id: from memory while the keys are fresh, else after reading them again when
   * the bound allows (or joining a read under way). Stale keys stay in use while the endpoint is
   * away; with none read yet, KeysUnavailableError.
   */
  async function keyFor(keyId: string): Promise<KeyObject | null> {
    const now = clock();
    const fresh = readAt !== null && now - readAt < maxAgeMs;
    if (fresh && keys.has(keyId)) return keys.get(keyId)!;
    if (inFlight || attemptedAt === null || now - attemptedAt >= refreshMs) {
      try {
        await readOnce();
      } catch (error) {
        if (readAt === null) throw error;
        logger.warn({ reporter: name, reason: (error as Error).message }, 'could not read the leaked-token reporter keys again; using the ones read before');
      }
    }
    if (readAt === null) throw new KeysUnavailableError(`the keys of ${name} could not be read yet; the next try is allowed in ${Math.ceil((refreshMs - (now - (attemptedAt ?? now))) / 1000)} s`);
    return keys.get(keyId) ?? null;
  }

  return {
    async verify(keyId, signature, body) {
      const key = await keyFor(keyId);
      if (!key) return 'unknown_key';
      let valid = false;
      try {
        valid = verify('sha256', body, { key, dsaEncoding: 'der' }, signature);
      } catch {
        valid = false;
      }
      return valid ? 'valid' : 'invalid';
    },
    get reads() {
      return reads;
    },
  };
}
