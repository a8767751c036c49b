import { describe, expect, it } from '@jest/globals';
import { createIntrospectionCallers, type CallerMetadata } from '../../../src/introspection/introspection-callers.ts';
import { OAuthError } from '../../../src/shared/errors.ts';
import { digestClientSecret } from '../../../src/clients/client-secret.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';
import { isPromise, type Awaitable } from '../../../src/shared/awaitable.ts';

// authenticate decides HTTP Basic at once, without a promise, for clients already in memory: it
// must decide exactly as it does after a load, or answer with a promise. The clients come from a
// table the test controls (the callers module is what is under test; the endpoint runs against
// real stores in test/integration/introspection-endpoint.test.ts).

const SECRET = 'tsr_cs_records-api-secret';
const clients = new Map<string, CallerMetadata>([
  ['records-api', { client_id: 'records-api', tessera_kind: 'resource_server', tessera_may_introspect: true, token_endpoint_auth_method: 'client_secret_basic', client_secret: digestClientSecret(SECRET) }],
  ['harvester', { client_id: 'harvester', tessera_kind: 'service', token_endpoint_auth_method: 'client_secret_basic', client_secret: digestClientSecret(SECRET) }],
  ['odd id', { client_id: 'odd id', tessera_kind: 'resource_server', tessera_may_introspect: true, token_endpoint_auth_method: 'client_secret_basic', client_secret: digestClientSecret('p@ss+word') }],
]);
const inMemory = new Set(clients.keys());

const callers = createIntrospectionCallers({
  issuer: 'https://issuer.example',
  endpointUrl: 'https://issuer.example/oauth/introspect',
  tokenEndpointUrl: 'https://issuer.example/oauth/token',
  // 'unknown' is known not to exist; anything else not in `inMemory` has to be loaded.
  findClient: (id) => (inMemory.has(id) ? clients.get(id) : id === 'unknown' ? undefined : Promise.resolve(clients.get(id))),
  ephemeral: createMemoryEphemeralStore(),
});

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** What a call decided at once: the client it accepted, or the refusal (status, error, message, challenge); 'undecided' for a promise. */
function outcome(call: () => Awaitable<CallerMetadata>): unknown {
  try {
    const client = call();
    if (isPromise(client)) {
      client.catch(() => undefined);
      return 'undecided';
    }
    return { client: client.client_id };
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return { status: error.status, error: error.error, message: error.message, basic: error.headers?.['WWW-Authenticate'] !== undefined };
  }
}

async function outcomeAsync(call: () => Awaitable<CallerMetadata>): Promise<unknown> {
  try {
    return { client: (await call()).client_id };
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error;
    return { status: error.status, error: error.error, message: error.message, basic: error.headers?.['WWW-Authenticate'] !== undefined };
  }
}

/** The call made while no client is in memory: every record has to be loaded. */
async function afterALoad(call: () => Awaitable<CallerMetadata>): Promise<unknown> {
  const held = [...inMemory];
  inMemory.clear();
  try {
    return await outcomeAsync(call);
  } finally {
    for (const id of held) inMemory.add(id);
  }
}

describe('introspection callers: decided at once from memory', () => {
  it('decides Basic credentials of a client in memory at once, as after a load', async () => {
    const cases: Array<[string, string, Record<string, string>]> = [
      ['the right secret', basic('records-api', SECRET), {}],
      ['the right secret, client_id repeated in the body', basic('records-api', SECRET), { client_id: 'records-api' }],
      ['form-encoded parts', basic('odd+id', 'p%40ss%2Bword'), {}],
      ['raw parts', basic('odd id', 'p@ss+word'), {}],
      ['a wrong secret', basic('records-api', `${SECRET}x`), {}],
      ['an empty secret', basic('records-api', ''), {}],
      ['a client known not to exist', basic('unknown', SECRET), {}],
      ['an empty client id', basic('', SECRET), {}],
      ['a client that is not a resource server', basic('harvester', SECRET), {}],
      ['a different client_id in the body', basic('records-api', SECRET), { client_id: 'harvester' }],
    ];
    for (const [what, authorization, body] of cases) {
      const params = new URLSearchParams(body);
      const now = outcome(() => callers.authenticate(authorization, params));
      expect({ what, now }).toEqual({ what, now: await afterALoad(() => callers.authenticate(authorization, params)) });
    }
    expect(outcome(() => callers.authenticate(basic('records-api', SECRET), new URLSearchParams()))).toEqual({ client: 'records-api' });
  });

  it('answers with a promise what needs a load or is not HTTP Basic alone', async () => {
    inMemory.delete('records-api');
    try {
      expect(outcome(() => callers.authenticate(basic('records-api', SECRET), new URLSearchParams()))).toBe('undecided');
      expect(await outcomeAsync(() => callers.authenticate(basic('records-api', SECRET), new URLSearchParams()))).toEqual({ client: 'records-api' });
    } finally {
      inMemory.add('records-api');
    }
    const undecided: Array<[string | undefined, Record<string, string>]> = [
      [undefined, { client_id: 'records-api', client_secret: SECRET }],
      [undefined, {}],
      ['Bearer abc', {}],
      [basic('records-api', SECRET), { client_secret: SECRET }],
      [basic('records-api', SECRET), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }],
    ];
    for (const [authorization, body] of undecided) {
      expect({ authorization, body, now: outcome(() => callers.authenticate(authorization, new URLSearchParams(body))) }).toEqual({ authorization, body, now: 'undecided' });
    }
  });

  it('remembers accepted Basic credentials only while the client record they were checked against is the cached one', () => {
    const original = clients.get('records-api')!;
    const header = basic('records-api', SECRET);
    const none = new URLSearchParams();
    try {
      expect(outcome(() => callers.authenticate(header, none))).toEqual({ client: 'records-api' });
      expect(outcome(() => callers.authenticate(header, none))).toEqual({ client: 'records-api' });
      // Remembered or not, a different client_id in the body is still refused.
      expect(outcome(() => callers.authenticate(header, new URLSearchParams({ client_id: 'harvester' })))).toMatchObject({ status: 400, error: 'invalid_request' });

      // Re-keyed: the cache holds a new record, whose digest the old secret does not match.
      clients.set('records-api', { ...original, client_secret: digestClientSecret('tsr_cs_the-new-secret') });
      expect(outcome(() => callers.authenticate(header, none))).toMatchObject({ status: 401, error: 'invalid_client' });
      expect(outcome(() => callers.authenticate(basic('records-api', 'tsr_cs_the-new-secret'), none))).toEqual({ client: 'records-api' });

      // Demoted from resource server: a new record again, refused although the secret matches.
      clients.set('records-api', { ...original, tessera_kind: 'service', tessera_may_introspect: undefined });
      expect(outcome(() => callers.authenticate(header, none))).toMatchObject({ status: 401, error: 'invalid_client' });

      // Back as it was, then dropped from memory: undecided, not answered from what was remembered.
      clients.set('records-api', original);
      expect(outcome(() => callers.authenticate(header, none))).toEqual({ client: 'records-api' });
      inMemory.delete('records-api');
      expect(outcome(() => callers.authenticate(header, none))).toBe('undecided');
    } finally {
      clients.set('records-api', original);
      inMemory.add('records-api');
    }
  });
});
