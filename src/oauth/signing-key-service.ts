import type { Actor } from '../accounts/account-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { SigningKeyDecryptionError, type RotationResult, type SigningKeyInfo, type SigningKeyStore } from './signing-keys.ts';

/**
 * How long a key that stops signing must stay published: the longest lifetime of a token it may
 * have signed. Only access tokens are signed (refresh tokens are opaque), and a declared client
 * may have a longer access-token lifetime than the default.
 */
export function longestSignedTokenLifetime(config: Config): number {
  return Math.max(config.oauth.accessTokenTtlSeconds, ...config.clients.map((client) => client.accessTokenTtlSeconds ?? 0));
}

export interface SigningKeyServiceOptions {
  /** The key store, opened on first use (it needs the key secret, which may be generated). */
  openStore: () => Promise<SigningKeyStore>;
  audit: AuditLog;
  /** Tells every node to read the keys again; absent without the servers' Redis. */
  announce?: () => Promise<void>;
  config: Config;
}

export interface SigningKeyRotation extends RotationResult {
  /** Whether every running node was told (through Redis); otherwise they sign with it after a restart. */
  announced: boolean;
}

/** Listing and rotating the signing keys: the admin API and `tessera keys` share this. */
export function createSigningKeyService({ openStore, audit, announce, config }: SigningKeyServiceOptions) {
  let opened: Promise<SigningKeyStore> | undefined;
  const store = () => (opened ??= openStore());

  return {
    async list(): Promise<SigningKeyInfo[]> {
      return (await store()).listKeys();
    },

    /**
     * A new current key; the previous one stays published until the tokens it signed expire. The
     * keys in use are decrypted first: a key stored under another secret than the servers' would
     * stop every node from starting.
     */
    async rotate(by: Actor): Promise<SigningKeyRotation> {
      const keys = await store();
      if ((await keys.listKeys()).length > 0) {
        try {
          await keys.loadJwks();
        } catch (error) {
          if (error instanceof SigningKeyDecryptionError) {
            throw new AppError(
              409,
              'key_secret_mismatch',
              `${error.message}. Nothing was changed: rotate with the servers' TESSERA_KEY_SECRET ` +
                '(or, with generated secrets, from the directory whose var/db/secrets.json the servers use).',
            );
          }
          throw error;
        }
      }
      const result = await keys.rotate(longestSignedTokenLifetime(config));
      await audit.record({
        ...by,
        action: 'keys.rotated',
        subject: `key:${result.kid}`,
        details: { algorithm: config.oauth.signingAlgorithm, retiring: result.retiring.map((key) => key.kid), pruned: result.pruned },
      });
      if (announce) await announce();
      return { ...result, announced: announce !== undefined };
    },
  };
}

export type SigningKeyService = ReturnType<typeof createSigningKeyService>;
