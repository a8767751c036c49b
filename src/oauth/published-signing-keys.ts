import { createLocalJWKSet, errors, importJWK, type CryptoKey, type JSONWebKeySet, type JWTVerifyGetKey, type KeyObject } from 'jose';
import type { Logger } from 'pino';
import type { PrivateJwk, SigningKeyStore } from './signing-keys.ts';

/**
 * The signing keys this node signs with and publishes, kept as the database has them while the
 * node runs: a rotation (by any node, or the CLI) is announced over the invalidation channel and
 * every node reads the keys again, so nothing needs a restart. A token signed with a key this node
 * has not heard of yet makes it read the keys once more before it refuses the token.
 */
export interface PublishedSigningKeys {
  /** oidc-provider's `jwks`: the private keys, the current one first. */
  privateJwks(): { keys: PrivateJwk[] };
  /** The key signing now (the first), imported for jose once per key: for JWTs Tessera signs itself. */
  currentSigningKey(): Promise<CurrentSigningKey>;
  publicJwks(): JSONWebKeySet;
  /** For jose's jwtVerify: the published key a token's header names. */
  verificationKey: JWTVerifyGetKey;
  /** Reads the keys from the database; tells the listeners when the set changed. */
  reload(): Promise<void>;
  /** Told of every new set (oidc-provider's keystore is replaced with it). */
  onChange(listener: (jwks: { keys: PrivateJwk[] }) => void): void;
}

export interface CurrentSigningKey {
  kid: string;
  alg: string;
  key: CryptoKey | KeyObject | Uint8Array;
}

export interface PublishedSigningKeysOptions {
  store: Pick<SigningKeyStore, 'loadJwks'>;
  logger: Logger;
  /** How seldom an unknown kid may make the node read the keys (default 1 s). */
  unknownKidReloadMs?: number;
  clock?: () => number;
}

function publicPart({ keys }: { keys: PrivateJwk[] }): JSONWebKeySet {
  return { keys: keys.map(({ kty, kid, alg, use, crv, x, y, n, e }) => ({ kty, kid, alg, use, crv, x, y, n, e })) };
}

const kids = (jwks: { keys: PrivateJwk[] }) => jwks.keys.map((key) => key.kid).join(' ');

export async function createPublishedSigningKeys(options: PublishedSigningKeysOptions): Promise<PublishedSigningKeys> {
  const clock = options.clock ?? Date.now;
  const minReloadMs = options.unknownKidReloadMs ?? 1000;
  let current = await options.store.loadJwks();
  let local = createLocalJWKSet(publicPart(current));
  let lastReloadAt = clock();
  let reloading: Promise<void> | undefined;
  const listeners: ((jwks: { keys: PrivateJwk[] }) => void)[] = [];
  /** The current key as imported, with the JWK it came from (a rotation brings a new one). */
  let imported: { jwk: PrivateJwk; key: Promise<CurrentSigningKey> } | undefined;

  function currentSigningKey(): Promise<CurrentSigningKey> {
    const [jwk] = current.keys;
    if (!jwk) return Promise.reject(new Error('no signing key'));
    if (imported?.jwk !== jwk) {
      const key = importJWK(jwk, jwk.alg).then((imported) => ({ kid: jwk.kid, alg: jwk.alg, key: imported }));
      imported = { jwk, key };
      // A failed import is not remembered: the next caller tries again.
      key.catch(() => {
        if (imported?.key === key) imported = undefined;
      });
    }
    return imported.key;
  }

  const reload = () =>
    (reloading ??= (async () => {
      try {
        lastReloadAt = clock();
        const next = await options.store.loadJwks();
        if (kids(next) === kids(current)) return;
        current = next;
        local = createLocalJWKSet(publicPart(next));
        for (const listener of listeners) listener(next);
        options.logger.info({ kids: next.keys.map((key) => key.kid) }, 'signing keys changed: now signing with the first, publishing all');
      } finally {
        reloading = undefined;
      }
    })());

  return {
    privateJwks: () => current,
    currentSigningKey,
    publicJwks: () => publicPart(current),
    async verificationKey(header, token) {
      try {
        return await local(header, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || clock() - lastReloadAt < minReloadMs) throw error;
        await reload();
        return local(header, token);
      }
    },
    reload,
    onChange: (listener) => void listeners.push(listener),
  };
}
