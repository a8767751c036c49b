import { parseArgs } from 'node:util';
import { resolveSecrets } from '../config/secrets.ts';
import type { Config } from '../config/schema.ts';
import { createSigningKeyStore, SigningKeyDecryptionError, type SigningKeyInfo, type SigningKeyStore } from '../oauth/signing-keys.ts';
import type { Core } from '../core.ts';
import type { Output, PlannedCommand } from './admin-commands.ts';
import { UsageError } from './prompt.ts';

const USAGE = 'usage: tessera keys list|rotate';

/**
 * How long a key that stops signing must stay published: the longest lifetime of a token it may
 * have signed. Only access tokens are signed (refresh tokens are opaque), and a declared client
 * may have a longer access-token lifetime than the default.
 */
export function longestSignedTokenLifetime(config: Config): number {
  return Math.max(config.oauth.accessTokenTtlSeconds, ...config.clients.map((client) => client.accessTokenTtlSeconds ?? 0));
}

async function openSigningKeys(core: Core): Promise<SigningKeyStore> {
  const { keyEncryptionSecret } = await resolveSecrets(core.config, core.logger);
  return createSigningKeyStore({ database: core.database, secret: keyEncryptionSecret, algorithm: core.config.oauth.signingAlgorithm });
}

function describeKey(key: SigningKeyInfo): string {
  return `${key.kid}\t${key.alg}\t${key.state}\t${key.createdAt.toISOString()}\t${key.retireAfter?.toISOString() ?? '-'}`;
}

/** `tessera keys list` and `tessera keys rotate`. */
export async function keysCommand(core: Core, args: string[], io: Output): Promise<void> {
  await planKeysCommand(args)(core, io);
}

/** keysCommand with its arguments checked before anything is opened. */
export function planKeysCommand(args: string[]): PlannedCommand {
  const [action, ...rest] = args;
  switch (action) {
    case 'list': {
      parseArgs({ args: rest, options: {} });
      return async (core, io) => {
        const keys = await (await openSigningKeys(core)).listKeys();
        if (keys.length === 0) {
          io.out('No signing key yet: Tessera creates one when it starts.');
          return;
        }
        io.out('KID\tALG\tSTATE\tCREATED\tRETIRE_AFTER');
        for (const key of keys) io.out(describeKey(key));
      };
    }
    case 'rotate': {
      parseArgs({ args: rest, options: {} });
      return async (core, io) => {
        const window = longestSignedTokenLifetime(core.config);
        const store = await openSigningKeys(core);
        // A key stored under another secret would stop every server from starting: first prove that
        // this command's secret is the servers' by decrypting the keys they use.
        if ((await store.listKeys()).length > 0) {
          try {
            await store.loadJwks();
          } catch (error) {
            if (error instanceof SigningKeyDecryptionError) {
              throw new Error(
                `${error.message}. Nothing was changed: run \`tessera keys rotate\` with the servers' TESSERA_KEY_SECRET ` +
                  '(or, with generated secrets, from the directory whose var/db/secrets.json the servers use).',
              );
            }
            throw error;
          }
        }
        const result = await store.rotate(window);
        io.out(`New signing key ${result.kid} (${core.config.oauth.signingAlgorithm}) is now current. Restart every Tessera node (one at a time) so that they sign with it and publish it.`);
        for (const key of result.retiring) {
          io.out(`Key ${key.kid} no longer signs; it stays published until ${key.retireAfter!.toISOString()} so the tokens it signed still verify.`);
        }
        if (result.pruned.length) io.out(`Removed expired keys: ${result.pruned.join(', ')}.`);
      };
    }
    default:
      throw new UsageError(USAGE);
  }
}
