import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { sha256Hex } from '../shared/sha256.ts';

// A secret handed from the POST that made it to the one GET that shows it (POST/Redirect/GET):
// the redirect's URL carries a random handle, the ephemeral store the secret encrypted under that
// handle, bound to the login session. The first page render takes it (GETDEL): a reload, the
// browser's history or another session find nothing. Neither half alone reveals the secret: the
// store keeps only ciphertext under the handle's digest, and the handle is worthless once taken.

export interface ShownOnce {
  /** Keeps `value` for the session's next page and returns the handle to put in its URL. */
  keep(sessionId: string, value: string): Promise<string>;
  /** The value, the first time it is asked for by the session that kept it; null ever after. */
  take(sessionId: string, handle: string): Promise<string | null>;
}

const HANDLE = /^[A-Za-z0-9_-]{43}$/;

export function createShownOnce({ ephemeral, ttlMs }: { ephemeral: EphemeralStore; ttlMs: number }): ShownOnce {
  const keyOf = (handle: string) => `shown-once:${sha256Hex(handle)}`;

  return {
    async keep(sessionId, value) {
      const secretKey = randomBytes(32);
      const handle = secretKey.toString('base64url');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', secretKey, iv);
      cipher.setAAD(Buffer.from(sessionId));
      const sealed = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
      const stored = [iv, cipher.getAuthTag(), sealed].map((part) => part.toString('base64url')).join('.');
      await ephemeral.set(keyOf(handle), stored, { ttlMs });
      return handle;
    },

    async take(sessionId, handle) {
      if (!HANDLE.test(handle)) return null;
      const stored = await ephemeral.getDel(keyOf(handle));
      if (!stored) return null;
      const [iv, tag, sealed] = stored.split('.').map((part) => Buffer.from(part, 'base64url'));
      try {
        const decipher = createDecipheriv('aes-256-gcm', Buffer.from(handle, 'base64url'), iv!);
        decipher.setAAD(Buffer.from(sessionId));
        decipher.setAuthTag(tag!);
        return Buffer.concat([decipher.update(sealed!), decipher.final()]).toString('utf8');
      } catch {
        // Kept for another session: gone now, shown to nobody.
        return null;
      }
    },
  };
}
