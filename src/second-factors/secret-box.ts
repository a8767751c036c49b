import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encryption at rest for second-factor secrets (TOTP keys): AES-256-GCM under keys derived with
 * HKDF-SHA256 for this purpose only, a random 12-byte IV per value, and the owner's id as
 * associated data (a ciphertext copied to another account does not decrypt). Each stored value
 * names the key it was sealed with (a short fingerprint), so that a key ring can be rotated: the
 * first key seals, every key opens (docs/second-factors.md, "The encryption key").
 */
export interface SecretBox {
  seal(plaintext: Buffer, owner: string): string;
  /** Throws SecretBoxError when no key of the ring opens it. */
  open(sealed: string, owner: string): Buffer;
  /** Whether the value was sealed with another key than the first (a rotation re-seals it). */
  sealedWithOlderKey(sealed: string): boolean;
}

export class SecretBoxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretBoxError';
  }
}

// Changing any of these makes every stored value unreadable: a new format gets a new version.
const HKDF_SALT = 'tessera/second-factors/salt/v1';
const HKDF_INFO = 'tessera/second-factors/aes-256-gcm/v1';
const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface RingKey {
  id: string;
  key: Buffer;
}

function deriveKey(secret: string): RingKey {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, HKDF_INFO, 32));
  // The fingerprint of the derived key (never of the secret itself), 8 characters.
  const id = createHash('sha256').update('tessera/second-factors/key-id').update(key).digest('base64url').slice(0, 8);
  return { id, key };
}

/** A box over `secrets`, newest first (at least one). */
export function createSecretBox(secrets: readonly string[]): SecretBox {
  if (secrets.length === 0) throw new Error('a secret box needs at least one key');
  const ring = secrets.map(deriveKey);
  const newest = ring[0]!;
  const parts = (sealed: string) => {
    const [format, id, iv, ciphertext, tag, ...rest] = sealed.split('.');
    if (format !== FORMAT || !id || !iv || !ciphertext || !tag || rest.length) throw new SecretBoxError('a second-factor secret is stored in a format this release does not know');
    return { id, iv, ciphertext, tag };
  };
  return {
    seal(plaintext, owner) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', newest.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(owner, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return [FORMAT, newest.id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    open(sealed, owner) {
      const { id, iv, ciphertext, tag } = parts(sealed);
      const entry = ring.find((candidate) => candidate.id === id);
      if (!entry) throw new SecretBoxError(`a second-factor secret was sealed with a key (${id}) that is not configured: keep every older key in TESSERA_SECOND_FACTOR_KEYS until none is in use`);
      try {
        const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(owner, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
      } catch (error) {
        throw new SecretBoxError('a second-factor secret does not decrypt (damaged, or moved to another account)', { cause: error });
      }
    },
    sealedWithOlderKey(sealed) {
      return parts(sealed).id !== newest.id;
    },
  };
}
