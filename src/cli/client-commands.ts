import { parseArgs } from 'node:util';
import { AppError } from '../http/app-error.ts';
import type { Client, ClientService } from '../oauth/client-service.ts';
import type { Core } from '../tessera.ts';
import { cliActor, type Output } from './admin-commands.ts';
import { UsageError } from './prompt.ts';

const USAGE = {
  create:
    'tessera client create --kind device|service|resource_server|web --name N [--id ID] [--scopes S,...] ' +
    '[--redirect-uri U ...] [--default-resource R] [--access-token-ttl SECONDS]',
  list: 'tessera client list',
  show: 'tessera client show <client-id>',
  delete: 'tessera client delete <client-id>',
  rotateSecret: 'tessera client rotate-secret <client-id>',
};

function oneClientId(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`usage: ${usage}`);
  return positionals[0]!;
}

function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(/[,\s]+/).filter(Boolean);
}

function parseTtl(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError('--access-token-ttl must be a whole number of seconds');
  return Number(value);
}

/** Prints a secret with the warning that goes with it: this is the only time anyone sees it. */
function printSecretOnce(io: Output, clientId: string, secret: string): void {
  io.out(`client_secret: ${secret}`);
  io.out('');
  io.out('  Store this secret now: it is shown only once and cannot be shown again (Tessera keeps only');
  io.out(`  its digest). If it is lost, issue a new one with: tessera client rotate-secret ${clientId}`);
}

/** Every property of a client but its secret, which is never shown after creation. */
function describeClient(client: Client, io: Output): void {
  const date = (value: Date | null) => (value ? value.toISOString() : '-');
  io.out(`client_id:          ${client.clientId}`);
  io.out(`name:               ${client.name}`);
  io.out(`kind:               ${client.kind}`);
  io.out(`source:             ${client.source === 'config' ? 'configuration (change it there)' : 'database'}`);
  io.out(`authentication:     ${client.confidential ? 'client secret (shown only when issued)' : 'none (public client)'}`);
  io.out(`scopes:             ${client.scopes.join(' ')}`);
  io.out(`redirect_uris:      ${client.redirectUris.length ? client.redirectUris.join(' ') : '-'}`);
  io.out(`default_resource:   ${client.defaultResource ?? '(the global oauth.defaultResource)'}`);
  io.out(`access_token_ttl:   ${client.accessTokenTtlSeconds === null ? '(the global oauth.accessTokenTtlSeconds)' : `${client.accessTokenTtlSeconds} s`}`);
  if (client.source === 'database') {
    io.out(`created_at:         ${date(client.createdAt)}`);
    io.out(`updated_at:         ${date(client.updatedAt)}`);
    io.out(`secret_rotated_at:  ${date(client.secretRotatedAt)}`);
  }
}

/**
 * `tessera client …`: registers, lists, shows, deletes clients and rotates their secrets. Needs only
 * the client service of the core. A secret is printed once, when issued; nothing prints it again.
 */
export async function clientCommand(core: Pick<Core & { clients: ClientService }, 'clients'>, args: string[], io: Output): Promise<void> {
  const [action, ...rest] = args;
  const { clients } = core;
  switch (action) {
    case 'create': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          kind: { type: 'string' },
          name: { type: 'string' },
          id: { type: 'string' },
          scopes: { type: 'string' },
          'redirect-uri': { type: 'string', multiple: true },
          'default-resource': { type: 'string' },
          'access-token-ttl': { type: 'string' },
        },
      });
      if (positionals.length || values.kind === undefined || values.name === undefined) throw new UsageError(`usage: ${USAGE.create}`);
      const { client, secret } = await clients.create(
        {
          clientId: values.id,
          name: values.name,
          kind: values.kind as Client['kind'],
          scopes: splitList(values.scopes),
          redirectUris: values['redirect-uri'],
          defaultResource: values['default-resource'],
          accessTokenTtlSeconds: parseTtl(values['access-token-ttl']),
        },
        cliActor(),
      );
      io.out(`Created the ${client.kind} client "${client.name}" with scopes ${client.scopes.join(', ')}.`);
      io.out(`client_id:     ${client.clientId}`);
      if (secret !== null) printSecretOnce(io, client.clientId, secret);
      else io.out('It is a public client: it has no secret.');
      return;
    }
    case 'list': {
      parseArgs({ args: rest, options: {} });
      io.out('CLIENT_ID\tKIND\tNAME\tSCOPES\tSOURCE');
      for (const client of await clients.list()) {
        io.out(`${client.clientId}\t${client.kind}\t${client.name}\t${client.scopes.join(',')}\t${client.source}`);
      }
      return;
    }
    case 'show': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const clientId = oneClientId(positionals, USAGE.show);
      const client = await clients.find(clientId);
      if (!client) throw AppError.notFound(`No client "${clientId}".`);
      describeClient(client, io);
      return;
    }
    case 'delete': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const client = await clients.delete(oneClientId(positionals, USAGE.delete), cliActor());
      io.out(`Deleted the ${client.kind} client ${client.clientId} ("${client.name}").`);
      return;
    }
    case 'rotate-secret': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const clientId = oneClientId(positionals, USAGE.rotateSecret);
      const secret = await clients.rotateSecret(clientId, cliActor());
      io.out(`Issued a new secret for ${clientId}; the previous secret no longer works.`);
      printSecretOnce(io, clientId, secret);
      return;
    }
    default:
      throw new UsageError(`usage: tessera client create|list|show|delete|rotate-secret ...\n  ${Object.values(USAGE).join('\n  ')}`);
  }
}
