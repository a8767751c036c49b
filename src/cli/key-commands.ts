import { parseArgs } from 'node:util';
import type { SigningKeyInfo } from '../oauth/signing-keys.ts';
import type { Core } from '../core.ts';
import { cliActor, type Output, type PlannedCommand } from './admin-commands.ts';
import { UsageError } from './prompt.ts';

const USAGE = 'usage: tessera keys list|rotate';

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
        const keys = await core.signingKeys.list();
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
        const result = await core.signingKeys.rotate(cliActor());
        io.out(
          `New signing key ${result.kid} (${core.config.oauth.signingAlgorithm}) is now current. ` +
            (result.announced
              ? 'Every running Tessera node was told through Redis: each signs with it and publishes it now, without a restart.'
              : 'Restart the server so that it signs with it and publishes it.'),
        );
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
