import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { CLIENT_ASSERTION_ALGORITHMS, CLIENT_ASSERTION_TYPE } from '../clients/client-assertion.ts';
import { formDecode, parseBasicAuthorization, type BasicCredentials } from '../credentials/basic-auth.ts';
import { OAuthError } from '../shared/errors.ts';
import { sha256Base64url } from '../shared/sha256.ts';
import { isPromise, thenNow, type Awaitable } from '../shared/awaitable.ts';
import { secretMatches } from '../clients/client-secret.ts';
import { claimClientAssertion } from '../oauth/adapter/assertion-replay.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';

/** The parts of a client's metadata that caller authentication reads. */
export interface CallerMetadata {
  client_id: string;
  tessera_kind: string;
  /** True for resource servers and for service clients granted introspection. */
  tessera_may_introspect?: boolean;
  token_endpoint_auth_method: string;
  /** Hex SHA-256 of the secret (secret clients). */
  client_secret?: string;
  /** The client's public keys (private_key_jwt clients). */
  jwks?: JSONWebKeySet;
}

export interface IntrospectionCallerDependencies {
  issuer: string;
  /** The endpoint's own URL, one of the audiences a client assertion may name. */
  endpointUrl: string;
  tokenEndpointUrl: string;
  /** The client's metadata, at once when the cache in front of the database holds it (client-metadata-cache.ts). */
  findClient(clientId: string): Awaitable<CallerMetadata | undefined>;
  /** Remembers client assertion ids until they expire (single use). */
  ephemeral: EphemeralStore;
  clock?: () => number;
}

/** RFC 6749 §5.2: a refusal of Basic credentials (or of none) asks for them again. */
const BASIC_CHALLENGE = { 'WWW-Authenticate': 'Basic realm="tessera"' };

/** An assertion may not be valid for longer than this (it is remembered until it expires). */
const MAX_ASSERTION_LIFETIME_S = 600;
const CLOCK_TOLERANCE_S = 15;
/** Most Basic credentials remembered as checked (one per resource server and secret in use). */
const CHECKED_BASIC_MAX = 1_000;

export interface IntrospectionCallers {
  /**
   * The resource server making the request, authenticated by client_secret_basic,
   * client_secret_post or private_key_jwt; refused with an OAuthError otherwise. Secrets are
   * compared as SHA-256 digests in constant time (they are generated with 256 bits; no argon2 on
   * this path). HTTP Basic alone, of a client the cache holds, is decided at once: the caller is
   * returned, or the OAuthError thrown, without a promise.
   */
  authenticate(authorization: string | undefined, params: URLSearchParams): Awaitable<CallerMetadata>;
}

/** Authenticates the callers of the introspection endpoint. */
export function createIntrospectionCallers(deps: IntrospectionCallerDependencies): IntrospectionCallers {
  const clock = deps.clock ?? Date.now;
  const audiences = [deps.issuer, deps.endpointUrl, deps.tokenEndpointUrl];

  const refused = (description: string, basic = false) => new OAuthError(401, 'invalid_client', description, basic ? { headers: BASIC_CHALLENGE } : {});
  /**
   * Basic credentials accepted from memory, by the SHA-256 of the whole Authorization header, with
   * the client record they were checked against: valid while the cache still holds that very
   * record (docs/architecture.md#checked-basic-credentials). Refusals are never kept.
   */
  const checkedBasic = new Map<string, CallerMetadata>();

  /** RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding; raw ones are accepted too. */
  function fromBasic(basic: BasicCredentials, params: URLSearchParams): { id: string; secret: string; alternative: string | undefined } {
    const id = formDecode(basic.id) ?? basic.id;
    const bodyId = params.get('client_id');
    if (bodyId !== null && bodyId !== id) throw new OAuthError(400, 'invalid_request', 'client_id in the body differs from the Basic credentials');
    const decoded = formDecode(basic.secret);
    return { id, secret: decoded ?? basic.secret, alternative: decoded !== undefined && decoded !== basic.secret ? basic.secret : undefined };
  }

  /** The client, if `secret` (or `alternative`) is its secret; refused otherwise. */
  function withSecret(client: CallerMetadata | null | undefined, secret: string, alternative: string | undefined, basic: boolean): CallerMetadata {
    const digest = client?.client_secret;
    if (!client || !digest || !(secretMatches(digest, secret) || (alternative !== undefined && secretMatches(digest, alternative)))) {
      throw refused('client authentication failed', basic);
    }
    return client;
  }

  function bySecret(clientId: string, secret: string, alternative: string | undefined, basic: boolean): Awaitable<CallerMetadata> {
    return thenNow(clientId ? deps.findClient(clientId) : undefined, (client) => withSecret(client, secret, alternative, basic));
  }

  function introspectorsOnly(client: CallerMetadata, basic: boolean): CallerMetadata {
    if (client.tessera_may_introspect !== true) throw refused('this client may not introspect tokens: only resource servers and service clients granted introspection may', basic);
    return client;
  }

  async function byAssertion(assertion: string, claimedId: string | null): Promise<CallerMetadata> {
    let issuer: unknown;
    try {
      const [, payload] = assertion.split('.');
      issuer = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')).iss;
    } catch {
      throw refused('the client assertion is not a JWT');
    }
    if (typeof issuer !== 'string' || (claimedId !== null && claimedId !== issuer)) throw refused('client authentication failed');
    const client = await deps.findClient(issuer);
    if (!client?.jwks || client.token_endpoint_auth_method !== 'private_key_jwt') throw refused('client authentication failed');
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(assertion, createLocalJWKSet(client.jwks), {
        issuer: client.client_id,
        subject: client.client_id,
        audience: audiences,
        algorithms: [...CLIENT_ASSERTION_ALGORITHMS],
        requiredClaims: ['exp', 'jti'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(clock()),
      }));
    } catch {
      throw refused('client authentication failed');
    }
    const now = Math.floor(clock() / 1000);
    const exp = claims.exp!;
    if (exp - now > MAX_ASSERTION_LIFETIME_S) throw refused(`the client assertion must expire within ${MAX_ASSERTION_LIFETIME_S} seconds`);
    // Single use, across this endpoint and oidc-provider's (assertion-replay.ts).
    const first = await claimClientAssertion(deps.ephemeral, client.client_id, String(claims.jti), exp + CLOCK_TOLERANCE_S, now);
    if (!first) throw refused('the client assertion was already used');
    return client;
  }

  /** Every method, checked in order and awaited: what byBasicAlone leaves to it. */
  const awaited: { authenticate(authorization: string | undefined, params: URLSearchParams): Promise<CallerMetadata> } = {
    async authenticate(authorization, params) {
      const basic = parseBasicAuthorization(authorization);
      if (authorization && !basic) throw refused('unsupported Authorization scheme: use Basic, client_secret_post or private_key_jwt');
      const assertionType = params.get('client_assertion_type');
      const assertion = params.get('client_assertion');
      const postedSecret = params.get('client_secret');
      const methods = [basic, assertion !== null || assertionType !== null ? true : undefined, postedSecret !== null ? true : undefined].filter(Boolean).length;
      if (methods > 1) throw new OAuthError(400, 'invalid_request', 'use exactly one client authentication method');
      let client: CallerMetadata;
      if (basic) {
        const { id, secret, alternative } = fromBasic(basic, params);
        client = await bySecret(id, secret, alternative, true);
      } else if (assertion !== null || assertionType !== null) {
        if (assertionType !== CLIENT_ASSERTION_TYPE || !assertion) throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${CLIENT_ASSERTION_TYPE}, with a client_assertion`);
        client = await byAssertion(assertion, params.get('client_id'));
      } else if (postedSecret !== null) {
        client = await bySecret(params.get('client_id') ?? '', postedSecret, undefined, false);
      } else {
        throw refused('client authentication is required', true);
      }
      return introspectorsOnly(client, basic !== undefined);
    },
  };

  /**
   * HTTP Basic alone, decided at once when the client's record is in memory (the caller, or a
   * refusal thrown), a promise when it must be loaded; undefined for any other method.
   */
  function byBasicAlone(authorization: string | undefined, params: URLSearchParams): Awaitable<CallerMetadata> | undefined {
    if (!authorization || params.has('client_assertion') || params.has('client_assertion_type') || params.has('client_secret')) return undefined;
    const key = sha256Base64url(authorization);
    const checked = checkedBasic.get(key);
    if (!checked || (params.has('client_id') && params.get('client_id') !== checked.client_id)) return byBasicSecret(key, authorization, params, undefined);
    const current = deps.findClient(checked.client_id);
    if (current === checked) return checked;
    // A new record (or none, or one to load) for the same header, so for the same client id.
    checkedBasic.delete(key);
    return byBasicSecret(key, authorization, params, { found: current });
  }

  /** The secret of the Basic credentials checked; remembered when the record was in memory. */
  function byBasicSecret(key: string, authorization: string, params: URLSearchParams, known: { found: Awaitable<CallerMetadata | undefined> } | undefined): Awaitable<CallerMetadata> | undefined {
    const basic = parseBasicAuthorization(authorization);
    if (!basic) return undefined;
    const { id, secret, alternative } = fromBasic(basic, params);
    const found = known ? known.found : id ? deps.findClient(id) : undefined;
    const check = (client: CallerMetadata | undefined) => introspectorsOnly(withSecret(client, secret, alternative, true), true);
    if (isPromise(found)) return found.then(check);
    const caller = check(found);
    if (checkedBasic.size >= CHECKED_BASIC_MAX) checkedBasic.delete(checkedBasic.keys().next().value!);
    checkedBasic.set(key, caller);
    return caller;
  }

  return {
    authenticate: (authorization, params) => byBasicAlone(authorization, params) ?? awaited.authenticate(authorization, params),
  };
}
