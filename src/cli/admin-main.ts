import { loadConfigOrReport } from '../config/load.ts';
import { AppError } from '../http/app-error.ts';
import { createLogger } from '../logger.ts';
import type { EphemeralStore } from '../store/ephemeral-store.ts';
import { openEphemeralStore } from '../store/open-stores.ts';
import { openCore } from '../tessera.ts';
import { migrateCommand, userCommand } from './admin-commands.ts';
import { clientCommand } from './client-commands.ts';
import { EXIT } from './exit-codes.ts';
import { keysCommand } from './key-commands.ts';
import { UsageError } from './prompt.ts';

function describeFailure(error: unknown): string {
  if (error instanceof AppError) {
    const fields = (error.errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join('');
    return `${error.message}${fields}`;
  }
  return (error as Error).message;
}

/** `tessera migrate | user | client | keys`: on the server's configuration and database. */
export async function runAdminCommand(command: string, rest: string[]): Promise<number> {
  const config = loadConfigOrReport();
  if (!config) return EXIT.config;
  // The CLI speaks to people: only warnings and worse from the services reach stderr.
  const logger = createLogger({ level: process.env.TESSERA_LOG_LEVEL ?? 'warn', destination: process.stderr as never });
  const io = { out: (line: string) => console.log(line) };

  let core;
  // Deleting a client or rotating its secret revokes its tokens, and a new password or a disabled
  // account ends the user's sessions: all of them live in Redis. (Embedded, they live in the
  // server's memory, and the server cannot run beside the CLI.)
  let ephemeral: EphemeralStore | undefined;
  try {
    if ((command === 'client' || command === 'user') && config.redis.url) ephemeral = await openEphemeralStore(config, logger);
    // `migrate` reports what it applies; every other command brings the schema up to date first.
    core = await openCore(config, logger, { migrate: command !== 'migrate', ephemeral });
  } catch (error) {
    await ephemeral?.close();
    console.error(`tessera: ${describeFailure(error)}`);
    return EXIT.failure;
  }
  try {
    if (command === 'migrate') await migrateCommand(core, io);
    else if (command === 'client') await clientCommand(core, rest, io);
    else if (command === 'keys') await keysCommand(core, rest, io);
    else await userCommand(core, rest, io);
    return EXIT.ok;
  } catch (error) {
    console.error(`tessera: ${describeFailure(error)}`);
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return EXIT.usage;
    return EXIT.failure;
  } finally {
    await Promise.allSettled([core.database.close(), ephemeral?.close()]);
  }
}
