import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { jwkThumbprint, type ClientJwks } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import type { Client, ClientService } from '../clients/client-service.ts';
import type { Core } from '../core.ts';
import { cliActor, type Output, type PlannedCommand } from './admin-commands.ts';
import { UsageError } from './prompt.ts';

const USAGE = {
  create:
    'tessera client create --kind device|service|resource_server|web --name N [--id ID] [--scopes S,...] ' +
    '[--redirect-uri U ...] [--default-resource R] [--access-token-ttl SECONDS] [--jwks-file PATH] [--may-introspect]',
  list: 'tessera client list',
  show: 'tessera client show <client-id>',
  delete: 'tessera client delete <client-id>',
  rotateSecret: 'tessera client rotate-secret <client-id>',
  rotateKeys: 'tessera client rotate-keys <client-id> --jwks-file PATH',
  setIntrospection: 'tessera client set-introspection <client-id> on|off',
  setTokenExchange: 'tessera client set-token-exchange <client-id> --subject-kinds K,... --audiences A,... --scopes S,... | off',
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

/**
 * Reads the public keys of a client from a JSON file: a JWK Set, or a single JWK (wrapped in a
 * set). The client service validates them (and refuses a private key).
 */
async function readJwksFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw AppError.badRequest(`Cannot read --jwks-file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw AppError.badRequest(`--jwks-file ${path} is not JSON: it must hold a JWK Set {"keys": [...]} or a single public JWK.`);
  }
  const isSingleJwk = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && 'kty' in parsed && !('keys' in parsed);
  return isSingleJwk ? { keys: [parsed] } : parsed;
}

/** One line per public key: its type, kid and RFC 7638 thumbprint. */
function keyLines(jwks: ClientJwks): string[] {
  return jwks.keys.map((key) => `${key.kty}${key.crv ? ` ${key.crv}` : ''}${key.alg ? ` ${key.alg}` : ''}, kid ${key.kid ? `"${key.kid}"` : '(none)'}, thumbprint ${jwkThumbprint(key)}`);
}

function printKeys(io: Output, jwks: ClientJwks): void {
  keyLines(jwks).forEach((line, index) => io.out(`${index === 0 ? 'public_keys:  ' : ' '.repeat(14)} ${line}`));
}

const AUTHENTICATION: Record<Client['authMethod'], string> = {
  none: 'none (public client)',
  client_secret_basic: 'client_secret_basic (a client secret, shown only when issued; client_secret_post works too)',
  private_key_jwt: 'private_key_jwt (assertions signed with its private key, verified with its public keys)',
};

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
  io.out(`authentication:     ${AUTHENTICATION[client.authMethod]}`);
  keyLines(client.jwks ?? { keys: [] }).forEach((line, index) => io.out(`${index === 0 ? 'public_keys:       ' : ' '.repeat(19)} ${line}`));
  io.out(`scopes:             ${client.scopes.join(' ')}`);
  io.out(`redirect_uris:      ${client.redirectUris.length ? client.redirectUris.join(' ') : '-'}`);
  io.out(`default_resource:   ${client.defaultResource ?? '(the global oauth.defaultResource)'}`);
  io.out(`introspection:      ${client.mayIntrospect ? (client.kind === 'resource_server' ? 'yes (every resource server)' : 'granted') : 'no'}`);
  const exchange = client.tokenExchange;
  io.out(`token_exchange:     ${exchange ? `${exchange.subjectTokenKinds.join(' ')} → ${exchange.audiences.join(' ')} (scopes ${exchange.scopes.join(' ')})` : 'no'}`);
  io.out(`access_token_ttl:   ${client.accessTokenTtlSeconds === null ? '(the global oauth.accessTokenTtlSeconds)' : `${client.accessTokenTtlSeconds} s`}`);
  if (client.source === 'database') {
    io.out(`created_at:         ${date(client.createdAt)}`);
    io.out(`updated_at:         ${date(client.updatedAt)}`);
    if (client.authMethod === 'private_key_jwt') io.out(`keys_rotated_at:    ${date(client.keysRotatedAt)}`);
    else if (client.authMethod === 'client_secret_basic') io.out(`secret_rotated_at:  ${date(client.secretRotatedAt)}`);
  }
}

type ClientCore = Pick<Core & { clients: ClientService }, 'clients'>;

/**
 * `tessera client …`: registers, lists, shows, deletes clients and rotates their secrets or keys.
 * Needs only the client service of the core. A secret is printed once, when issued; nothing prints
 * it again. Keys are only ever public keys: a private key is refused.
 */
export async function clientCommand(core: ClientCore, args: string[], io: Output): Promise<void> {
  await planClientCommand(args)(core, io);
}

/** clientCommand with its arguments checked before anything is opened. */
export function planClientCommand(args: string[]): PlannedCommand<ClientCore> {
  const [action, ...rest] = args;
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
          'jwks-file': { type: 'string' },
          'may-introspect': { type: 'boolean' },
        },
      });
      if (positionals.length || values.kind === undefined || values.name === undefined) throw new UsageError(`usage: ${USAGE.create}`);
      const accessTokenTtlSeconds = parseTtl(values['access-token-ttl']);
      return async ({ clients }, io) => {
        const jwks = values['jwks-file'] === undefined ? undefined : await readJwksFile(values['jwks-file']);
        const { client, secret } = await clients.create(
          {
            clientId: values.id,
            name: values.name!,
            kind: values.kind as Client['kind'],
            scopes: splitList(values.scopes),
            redirectUris: values['redirect-uri'],
            defaultResource: values['default-resource'],
            accessTokenTtlSeconds,
            ...(jwks === undefined ? {} : { jwks }),
            ...(values['may-introspect'] ? { mayIntrospect: true } : {}),
          },
          cliActor(),
        );
        io.out(`Created the ${client.kind} client "${client.name}" with scopes ${client.scopes.join(', ')}.`);
        io.out(`client_id:     ${client.clientId}`);
        if (client.kind === 'service' && client.mayIntrospect) io.out('introspection: granted (it may call the introspection endpoint)');
        if (secret !== null) printSecretOnce(io, client.clientId, secret);
        else if (client.jwks) {
          io.out('auth_method:   private_key_jwt (no secret: it signs client assertions with its private key)');
          printKeys(io, client.jwks);
        } else io.out('It is a public client: it has no secret.');
      };
    }
    case 'list': {
      parseArgs({ args: rest, options: {} });
      return async ({ clients }, io) => {
        io.out('CLIENT_ID\tKIND\tNAME\tSCOPES\tSOURCE\tAUTH');
        for (const client of await clients.list()) {
          io.out(`${client.clientId}\t${client.kind}\t${client.name}\t${client.scopes.join(',')}\t${client.source}\t${client.authMethod}`);
        }
      };
    }
    case 'show': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const clientId = oneClientId(positionals, USAGE.show);
      return async ({ clients }, io) => {
        const client = await clients.find(clientId);
        if (!client) throw AppError.notFound(`No client "${clientId}".`);
        describeClient(client, io);
      };
    }
    case 'delete': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const clientId = oneClientId(positionals, USAGE.delete);
      return async ({ clients }, io) => {
        const client = await clients.delete(clientId, cliActor());
        io.out(`Deleted the ${client.kind} client ${client.clientId} ("${client.name}").`);
      };
    }
    case 'rotate-secret': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const clientId = oneClientId(positionals, USAGE.rotateSecret);
      return async ({ clients }, io) => {
        const secret = await clients.rotateSecret(clientId, cliActor());
        io.out(`Issued a new secret for ${clientId}; the previous secret no longer works.`);
        printSecretOnce(io, clientId, secret);
      };
    }
    case 'rotate-keys': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { 'jwks-file': { type: 'string' } } });
      const clientId = oneClientId(positionals, USAGE.rotateKeys);
      const jwksFile = values['jwks-file'];
      if (jwksFile === undefined) throw new UsageError(`usage: ${USAGE.rotateKeys}`);
      return async ({ clients }, io) => {
        const client = await clients.rotateKeys(clientId, await readJwksFile(jwksFile), cliActor());
        io.out(`Replaced the public keys of ${clientId}; assertions signed with any other key no longer work.`);
        printKeys(io, client.jwks!);
      };
    }
    case 'set-introspection': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const [clientId, setting] = positionals;
      if (positionals.length !== 2 || (setting !== 'on' && setting !== 'off')) throw new UsageError(`usage: ${USAGE.setIntrospection}`);
      return async ({ clients }, io) => {
        await clients.setIntrospection(clientId!, setting === 'on', cliActor());
        io.out(setting === 'on' ? `${clientId} may now call the introspection endpoint.` : `${clientId} may no longer call the introspection endpoint.`);
      };
    }
    case 'set-token-exchange': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { 'subject-kinds': { type: 'string' }, audiences: { type: 'string' }, scopes: { type: 'string' } },
      });
      const [clientId, off] = positionals;
      const given = [values['subject-kinds'], values.audiences, values.scopes];
      const removing = positionals.length === 2 && off === 'off' && given.every((value) => value === undefined);
      if (!removing && (positionals.length !== 1 || given.some((value) => value === undefined))) throw new UsageError(`usage: ${USAGE.setTokenExchange}`);
      // The service checks kinds, audiences and scopes against the configuration, naming any that do not fit.
      const policy = removing ? null : { subjectTokenKinds: splitList(values['subject-kinds']), audiences: splitList(values.audiences), scopes: splitList(values.scopes) };
      return async ({ clients }, io) => {
        const client = await clients.setTokenExchange(clientId!, policy, cliActor());
        const exchange = client.tokenExchange;
        io.out(exchange ? `${clientId} may now exchange ${exchange.subjectTokenKinds.join(', ')} for tokens for ${exchange.audiences.join(', ')}, with at most the scopes ${exchange.scopes.join(', ')}.` : `${clientId} may no longer exchange tokens.`);
      };
    }
    default:
      throw new UsageError(`usage: tessera client create|list|show|delete|rotate-secret|rotate-keys|set-introspection|set-token-exchange ...\n  ${Object.values(USAGE).join('\n  ')}`);
  }
}
