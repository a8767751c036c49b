import { loadConfigOrReport, usesRedis } from '../config/load.ts';
import { AppError } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { migrateCommand, planUserCommand, type PlannedCommand } from './admin-commands.ts';
import { planAuditCommand } from './audit-commands.ts';
import { planClientCommand } from './client-commands.ts';
import { EXIT } from './exit-codes.ts';
import { planKeysCommand } from './key-commands.ts';
import { UsageError } from './prompt.ts';

function describeFailure(error: unknown): string {
  if (error instanceof AppError) {
    const fields = (error.errors ?? []).map((e) => `\n  ${e.field}: ${e.message}`).join('');
    return `${error.message}${fields}`;
  }
  return (error as Error).message;
}

/** The command's work once its arguments are checked; a usage error is thrown here. */
function plan(command: string, rest: string[]): PlannedCommand {
  if (command === 'migrate') return migrateCommand;
  if (command === 'client') return planClientCommand(rest);
  if (command === 'keys') return planKeysCommand(rest);
  if (command === 'audit') return planAuditCommand(rest);
  return planUserCommand(rest);
}

function isUsageError(error: unknown): boolean {
  return error instanceof UsageError || Boolean((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'));
}

/**
 * `tessera migrate | user | client | keys | audit`: on the server's configuration and database. The
 * arguments are checked first: a mistyped command is told so at once, without opening anything.
 */
export async function runAdminCommand(command: string, rest: string[]): Promise<number> {
  let planned: PlannedCommand;
  try {
    planned = plan(command, rest);
  } catch (error) {
    console.error(`tessera: ${describeFailure(error)}`);
    return isUsageError(error) ? EXIT.usage : EXIT.failure;
  }
  const config = loadConfigOrReport();
  if (!config) return EXIT.config;
  if (planned.withoutRedis && !usesRedis(config)) {
    console.error(`tessera: ${planned.withoutRedis}`);
    return EXIT.failure;
  }
  // The CLI speaks to people: only warnings and worse from the services reach stderr.
  const logger = createLogger({ level: process.env.TESSERA_LOG_LEVEL ?? 'warn', destination: process.stderr as never });
  const io = { out: (line: string) => console.log(line) };

  let core;
  // Deleting a client or rotating its secret revokes its tokens, a new password or a disabled
  // account ends the user's sessions, and a new signing key is announced to every node: all
  // through Redis. (Embedded, they live in the
  // server's memory, and the server cannot run beside the CLI.)
  let ephemeral: EphemeralStore | undefined;
  try {
    // The server's modules (oidc-provider, express, the stores) load only once there is work to do.
    const [{ openEphemeralStore }, { openCore }] = await Promise.all([import('../store/open-stores.ts'), import('../core.ts')]);
    if (command !== 'migrate' && usesRedis(config)) ephemeral = await openEphemeralStore(config, logger);
    // `migrate` reports what it applies; every other command brings the schema up to date first.
    core = await openCore(config, logger, { migrate: command !== 'migrate', ephemeral });
  } catch (error) {
    await ephemeral?.close();
    console.error(`tessera: ${describeFailure(error)}`);
    return EXIT.failure;
  }
  try {
    await planned(core, io);
    return EXIT.ok;
  } catch (error) {
    console.error(`tessera: ${describeFailure(error)}`);
    return isUsageError(error) ? EXIT.usage : EXIT.failure;
  } finally {
    await core.audit.settled();
    await Promise.allSettled([core.database.close(), ephemeral?.close()]);
  }
}
