import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Config } from '../config/schema.ts';
import type { Database, Queryable } from '../store/sql/database.ts';

/**
 * The keys that sign tokens, kept in PostgreSQL so that every node signs with the same key and
 * publishes the same JWKS. Private keys are stored only encrypted: AES-256-GCM under a key derived
 * from TESSERA_KEY_SECRET with HKDF-SHA256, a random 12-byte IV per key, and the kid as associated
 * data (a ciphertext moved to another row does not decrypt). The lifecycle (current → retiring →
 * gone) is described in migrations/0003_signing_keys.sql.
 */

export type SigningAlgorithm = Config['oauth']['signingAlgorithm'];

/** Advisory lock key held while creating, rotating or pruning keys (migrations hold 0x7e55e7a). */
export const SIGNING_KEY_LOCK_KEY = 0x7e55516b;

/** A public key as published at jwks_uri. */
export interface PublicJwk extends JWK {
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
}

/** A private JWK as oidc-provider's `jwks` configuration takes it. */
export interface PrivateJwk extends PublicJwk {
  d: string;
}

export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlgorithm;
  createdAt: Date;
  activatedAt: Date;
  /** current: signs new tokens; retiring: no longer signs, still published until retireAfter. */
  state: 'current' | 'retiring';
  retireAfter: Date | null;
}

export interface RotationResult {
  /** The new current key. */
  kid: string;
  /** Keys still published so that tokens they signed verify, each until its retireAfter. */
  retiring: SigningKeyInfo[];
  /** Keys whose retireAfter had passed, deleted by this rotation. */
  pruned: string[];
}

export interface SigningKeyStore {
  /** Creates the first key if there is no current one; several nodes starting at once create one. */
  ensureSigningKey(): Promise<{ kid: string; created: boolean }>;
  /**
   * Adds a new current key; the previous current key keeps being published for
   * maxTokenLifetimeSeconds (the longest lifetime of a token it may have signed), then goes.
   */
  rotate(maxTokenLifetimeSeconds: number): Promise<RotationResult>;
  /** For oidc-provider's `jwks`: the current key first (it signs with the first key of an alg). */
  loadJwks(): Promise<{ keys: PrivateJwk[] }>;
  /** The same keys without their private members, in the same order. */
  loadPublicJwks(): Promise<{ keys: PublicJwk[] }>;
  /** Published keys, current first, for `tessera keys list`. */
  listKeys(): Promise<SigningKeyInfo[]>;
}

export interface SigningKeyStoreOptions {
  database: Database;
  /** TESSERA_KEY_SECRET (or the generated one): see resolveSecrets in src/config/secrets.ts. */
  secret: string;
  /** The algorithm of keys created from now on (oauth.signingAlgorithm). */
  algorithm: SigningAlgorithm;
  /** Milliseconds since the epoch; injected by tests. */
  clock?: () => number;
}

/** Thrown when a stored private key does not decrypt: the secret is not the one it was stored with. */
export class SigningKeyDecryptionError extends Error {
  readonly kid: string;

  constructor(kid: string, options?: { cause?: unknown }) {
    super(`cannot decrypt signing key ${kid}: TESSERA_KEY_SECRET differs from the one the key was stored with`, options);
    this.name = 'SigningKeyDecryptionError';
    this.kid = kid;
  }
}

// Changing any of these makes every stored key unreadable: a new format gets a new version prefix.
const HKDF_SALT = 'tessera/signing-keys/salt/v1';
const HKDF_INFO = 'tessera/signing-keys/aes-256-gcm/v1';
const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MIN_SECRET_LENGTH = 32;

function deriveEncryptionKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), HKDF_SALT, HKDF_INFO, 32));
}

function encrypt(key: Buffer, kid: string, jwk: JWK): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(jwk), 'utf8'), cipher.final()]);
  return [FORMAT, iv, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

function decrypt(key: Buffer, kid: string, stored: string): JWK {
  const [format, iv, ciphertext, tag, ...rest] = stored.split('.');
  if (format !== FORMAT || !iv || !ciphertext || !tag || rest.length) {
    throw new Error(`signing key ${kid} is stored in a format this release of Tessera does not know`);
  }
  let plaintext: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new SigningKeyDecryptionError(kid, { cause: error });
  }
  return JSON.parse(plaintext) as JWK;
}

interface GeneratedKey {
  kid: string;
  alg: SigningAlgorithm;
  publicJwk: PublicJwk;
  privateJwk: JWK;
}

async function generateSigningKey(alg: SigningAlgorithm): Promise<GeneratedKey> {
  // RSA keys are 2048 bits (jose's default); EdDSA is Ed25519.
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicPart = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicPart, 'sha256');
  return { kid, alg, publicJwk: { ...publicPart, kid, alg, use: 'sig' }, privateJwk: await exportJWK(privateKey) };
}

interface KeyRow {
  kid: string;
  alg: SigningAlgorithm;
  public_jwk: PublicJwk;
  encrypted_private_jwk: string;
  created_at: Date;
  activated_at: Date;
  retire_after: Date | null;
}

/** Published keys (current, or retiring and not yet past retire_after), the current one first. */
const PUBLISHED = `FROM signing_keys WHERE retire_after IS NULL OR retire_after > $1
  ORDER BY (retire_after IS NULL) DESC, activated_at DESC, created_at DESC, kid`;

function describe(row: KeyRow): SigningKeyInfo {
  return {
    kid: row.kid,
    alg: row.alg,
    createdAt: new Date(row.created_at),
    activatedAt: new Date(row.activated_at),
    state: row.retire_after === null ? 'current' : 'retiring',
    retireAfter: row.retire_after === null ? null : new Date(row.retire_after),
  };
}

export function createSigningKeyStore({ database, secret, algorithm, clock = Date.now }: SigningKeyStoreOptions): SigningKeyStore {
  if (secret.length < MIN_SECRET_LENGTH) throw new Error(`the key encryption secret must be at least ${MIN_SECRET_LENGTH} characters`);
  const encryptionKey = deriveEncryptionKey(secret);
  const now = () => new Date(clock());

  async function insert(connection: Queryable, key: GeneratedKey, at: Date): Promise<void> {
    await connection.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, encrypted_private_jwk, created_at, activated_at, retire_after)
       VALUES ($1, $2, $3, $4, $5, $5, NULL)`,
      [key.kid, key.alg, JSON.stringify(key.publicJwk), encrypt(encryptionKey, key.kid, key.privateJwk), at],
    );
  }

  async function prune(connection: Queryable, at: Date): Promise<string[]> {
    const { rows } = await connection.query<{ kid: string }>('DELETE FROM signing_keys WHERE retire_after <= $1 RETURNING kid', [at]);
    return rows.map((row) => row.kid).sort();
  }

  async function published(connection: Queryable = database): Promise<KeyRow[]> {
    const { rows } = await connection.query<KeyRow>(`SELECT kid, alg, public_jwk, encrypted_private_jwk, created_at, activated_at, retire_after ${PUBLISHED}`, [now()]);
    return rows;
  }

  async function requirePublished(): Promise<KeyRow[]> {
    const rows = await published();
    // oidc-provider without keys would fall back to its public development keys: never that.
    if (rows.length === 0) throw new Error('there is no signing key: ensureSigningKey() must run before the keys are loaded');
    return rows;
  }

  return {
    async ensureSigningKey() {
      return database.withAdvisoryLock(SIGNING_KEY_LOCK_KEY, async (connection) => {
        const at = now();
        await prune(connection, at);
        const { rows } = await connection.query<Pick<KeyRow, 'kid' | 'alg'>>('SELECT kid, alg FROM signing_keys WHERE retire_after IS NULL');
        const current = rows[0];
        if (current) {
          if (current.alg !== algorithm) {
            throw new Error(
              `the current signing key ${current.kid} is ${current.alg} but oauth.signingAlgorithm is ${algorithm}: ` +
                `run "tessera keys rotate" to switch to a new ${algorithm} key (the old one stays published until its tokens expire)`,
            );
          }
          return { kid: current.kid, created: false };
        }
        const key = await generateSigningKey(algorithm);
        await insert(connection, key, at);
        return { kid: key.kid, created: true };
      });
    },

    async rotate(maxTokenLifetimeSeconds) {
      if (!Number.isFinite(maxTokenLifetimeSeconds) || maxTokenLifetimeSeconds < 0) {
        throw new Error('the lifetime of tokens signed by a retiring key must be 0 seconds or more');
      }
      // Generating an RSA key takes a moment: done before the transaction, to keep it short.
      const key = await generateSigningKey(algorithm);
      return database.withAdvisoryLock(SIGNING_KEY_LOCK_KEY, async (connection) => {
        const at = now();
        const retireAfter = new Date(at.getTime() + maxTokenLifetimeSeconds * 1000);
        await connection.exec('BEGIN');
        let pruned: string[];
        try {
          pruned = await prune(connection, at);
          // Keys already retiring keep their date: they stopped signing at an earlier rotation.
          await connection.query('UPDATE signing_keys SET retire_after = $1 WHERE retire_after IS NULL', [retireAfter]);
          await insert(connection, key, at);
          await connection.exec('COMMIT');
        } catch (error) {
          await connection.exec('ROLLBACK').catch(() => undefined);
          throw error;
        }
        const retiring = (await published(connection)).map(describe).filter((info) => info.state === 'retiring');
        return { kid: key.kid, retiring, pruned };
      });
    },

    async loadJwks() {
      const keys: PrivateJwk[] = [];
      for (const row of await requirePublished()) {
        const privateJwk = decrypt(encryptionKey, row.kid, row.encrypted_private_jwk);
        if (typeof privateJwk.d !== 'string' || (await calculateJwkThumbprint(privateJwk, 'sha256')) !== row.kid) {
          throw new Error(`signing key ${row.kid}: the decrypted private key does not match its kid`);
        }
        keys.push({ ...privateJwk, d: privateJwk.d, kid: row.kid, alg: row.alg, use: 'sig' });
      }
      return { keys };
    },

    async loadPublicJwks() {
      const rows = await requirePublished();
      return { keys: rows.map((row) => ({ ...row.public_jwk, kid: row.kid, alg: row.alg, use: 'sig' as const })) };
    },

    async listKeys() {
      return (await published()).map(describe);
    },
  };
}
