import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.ts';
import { tokenFormat } from '../credentials/token-format.ts';
import type { PersonalTokenService } from '../personal-tokens/personal-token-service.ts';
import type { ApiSessionStore } from '../sessions/api-session-store.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { sha256Base64url } from '../shared/sha256.ts';

// What happens to the tokens a secret scanner reports as found in public (docs/leaked-tokens.md):
// each one that is a Tessera credential ends at once (through the services that end it, so every
// node's caches drop it) and its owner's security log says where it was found. The answer says
// which reports were Tessera credentials, nothing more.

/** One token found, as the reporter describes it (GitHub's secret-scanning partner format). */
export interface LeakReport {
  token: string;
  /** The name the reporter gives the pattern that matched. */
  type: string;
  /** Where it was found (may be empty). */
  url: string;
  /** What kind of place that is (`content`, `commit`, `issue_comment`, …). */
  source: string;
}

/** The answer for one report, in the reporter's feedback format. */
export interface LeakVerdict {
  token_raw: string;
  token_type: string;
  label: 'true_positive' | 'false_positive';
}

/** An opaque OAuth token as oidc-provider stores it (what oauth/adapter's findOidcToken answers). */
export interface StoredOAuthToken {
  model: string;
  payload: { accountId?: unknown; grantId?: unknown; clientId?: unknown };
}

/**
 * The opaque OAuth tokens (oidc-provider's: 43 characters of base64url, no prefix, no checksum).
 * Scanners cannot tell them from other random strings; a reporter whose own pattern found one
 * (say, in a log of Authorization headers) may still report it.
 */
export interface OAuthTokenRevocation {
  /** The stored access or refresh token of this value, or undefined. */
  find(value: string): Promise<StoredOAuthToken | undefined>;
  /** Ends the login (grant) with everything issued under it, on every node. */
  revokeGrant(grantId: string): Promise<void>;
  /** Ends one token without a grant (client credentials), on every node. */
  destroy(model: string, value: string): Promise<void>;
}

const OPAQUE_OAUTH_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A credential a report ended, as its owner is told of it (never its value). */
export interface EndedCredential {
  kind: 'personal_access_token' | 'session' | 'refresh_token' | 'access_token';
  /** The client an OAuth token was issued to. */
  clientId?: string;
  /** A personal token's name and hint. */
  name?: string;
  hint?: string;
  url: string;
  source: string;
  reporter: string;
}

export interface LeakReportsOptions {
  personalTokens: Pick<PersonalTokenService, 'revokeLeaked'>;
  sessions: Pick<ApiSessionStore, 'peek' | 'endAndReturn'>;
  audit: Pick<AuditLog, 'record'>;
  /** Remembers ended sessions' digests, so that a repeated report of one still reads true_positive. */
  ephemeral: Pick<EphemeralStore, 'get' | 'set'>;
  /** How long that is remembered: at least the longest a session (or OAuth token) can live. */
  endedSessionMemoryMs: number;
  /** Opaque OAuth tokens; without it, a report of one is answered false_positive. */
  oauthTokens?: OAuthTokenRevocation;
  logger: Logger;
  /**
   * Tells an owner what a report ended (e-mail, where configured): once per owner and report,
   * after the answer is made; a failure is logged, never the report's.
   */
  notifyOwner?: (userId: string, ended: EndedCredential[]) => Promise<void>;
}

export interface LeakReports {
  /** Ends what matches, in order; one verdict per report, in the same order. */
  handle(reporter: string, reports: readonly LeakReport[]): Promise<LeakVerdict[]>;
}

const MAX_URL_LENGTH = 2048;
const MAX_SOURCE_LENGTH = 64;
const MAX_TYPE_LENGTH = 128;

/** Text from the report as the security page shows it: no control characters, bounded. */
function printable(value: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, max);
}

const endedSessionKey = (digest: string) => `leaked-session:{${digest}}`;
const endedOAuthKey = (digest: string) => `leaked-oauth:{${digest}}`;

const OAUTH_KINDS: Readonly<Record<string, 'refresh_token' | 'access_token' | undefined>> = { RefreshToken: 'refresh_token', AccessToken: 'access_token', ClientCredentials: 'access_token' };

export function createLeakReports({ personalTokens, sessions, audit, ephemeral, endedSessionMemoryMs, oauthTokens, logger, notifyOwner }: LeakReportsOptions): LeakReports {
  /**
   * An opaque OAuth token: a person's (under a grant) ends with its whole login; a client's own
   * (client credentials) alone. Remembered like a session, since nothing of it stays.
   */
  async function settleOAuth(reporter: string, value: string, sighting: Record<string, string>, endedFor: (userId: string, credential: EndedCredential) => void): Promise<boolean> {
    if (!oauthTokens || !OPAQUE_OAUTH_TOKEN.test(value)) return false;
    const digest = sha256Base64url(value);
    const found = await oauthTokens.find(value);
    const kind = found && OAUTH_KINDS[found.model];
    const clientId = typeof found?.payload.clientId === 'string' ? found.payload.clientId : null;
    if (!found || !kind || clientId === null) return (await ephemeral.get(endedOAuthKey(digest))) !== null;
    const { accountId, grantId } = found.payload;
    const by = { actor: `reporter:${reporter}` };
    const personal = typeof grantId === 'string' && typeof accountId === 'string';
    // Of reports of one token at once (two scanners, two nodes), the one that marks it ended records
    // it: one event, one e-mail. Marked before it ends, so a report that finds it gone already
    // finds the mark; every report ends it, so none depends on another finishing.
    const first = await ephemeral.set(endedOAuthKey(digest), '1', { ttlMs: endedSessionMemoryMs, onlyIfAbsent: true });
    if (personal) await oauthTokens.revokeGrant(grantId);
    else await oauthTokens.destroy(found.model, value);
    if (!first) return true;
    if (personal) {
      await audit.record({ ...by, action: 'credential.leaked', subject: `user:${accountId}`, details: { ...sighting, kind, userId: accountId, clientId, grantId } });
      endedFor(accountId, { kind, clientId, url: sighting.url!, source: sighting.source!, reporter });
    } else {
      await audit.record({ ...by, action: 'credential.leaked', subject: `client:${clientId}`, details: { ...sighting, kind: 'client_credentials', clientId } });
    }
    logger.warn({ reporter, kind, clientId, source: sighting.source }, 'revoked an OAuth token reported as leaked');
    return true;
  }

  /** Whether the report is a Tessera credential; ends it if it is still live (and adds it to `ended`, by owner). */
  async function settle(reporter: string, report: LeakReport, ended: Map<string, EndedCredential[]>): Promise<boolean> {
    const endedFor = (userId: string, credential: EndedCredential) => ended.set(userId, [...(ended.get(userId) ?? []), credential]);
    const sighting = { reporter, type: printable(report.type, MAX_TYPE_LENGTH), url: printable(report.url, MAX_URL_LENGTH), source: printable(report.source, MAX_SOURCE_LENGTH) };
    const kind = tokenFormat.parse(report.token);
    // A Tessera token that is mistyped fails the checksum: no lookup at all.
    if (kind === null) return report.token.startsWith('tsr_') ? false : settleOAuth(reporter, report.token, sighting, endedFor);
    const by = { actor: `reporter:${reporter}` };
    if (kind === 'personal_access_token') {
      const result = await personalTokens.revokeLeaked(report.token, by, sighting);
      if (result?.outcome === 'revoked') {
        logger.warn({ reporter, kind, tokenId: result.tokenId, userId: result.userId, source: sighting.source }, 'revoked a personal access token reported as leaked');
        endedFor(result.userId, { kind, name: result.name, hint: result.hint, url: sighting.url, source: sighting.source, reporter });
      }
      return result !== null;
    }
    const digest = tokenFormat.digest(report.token);
    // Marked before it ends, so that a report of it at the same time that finds it gone already
    // finds the mark; only the report that ends it records it.
    if (await sessions.peek(report.token)) await ephemeral.set(endedSessionKey(digest), '1', { ttlMs: endedSessionMemoryMs });
    const session = await sessions.endAndReturn(report.token);
    if (session === null) return (await ephemeral.get(endedSessionKey(digest))) !== null;
    await audit.record({ ...by, action: 'credential.leaked', subject: `user:${session.userId}`, details: { ...sighting, kind: 'session', userId: session.userId, session: session.id } });
    logger.warn({ reporter, kind, session: session.id, userId: session.userId, source: sighting.source }, 'ended an API session reported as leaked');
    endedFor(session.userId, { kind, url: sighting.url, source: sighting.source, reporter });
    return true;
  }

  return {
    async handle(reporter, reports) {
      const verdicts: LeakVerdict[] = [];
      const ended = new Map<string, EndedCredential[]>();
      // One at a time: a report repeating a token finds it already ended, never ends it twice.
      for (const report of reports) {
        const matched = await settle(reporter, report, ended);
        verdicts.push({ token_raw: report.token, token_type: report.type, label: matched ? 'true_positive' : 'false_positive' });
      }
      logger.info({ reporter, reports: reports.length, matched: verdicts.filter((v) => v.label === 'true_positive').length }, 'answered a leaked-token report');
      for (const [userId, credentials] of notifyOwner ? ended : []) {
        void notifyOwner!(userId, credentials).catch((error: unknown) => logger.warn({ userId, reason: error instanceof Error ? error.message : String(error) }, 'could not tell the owner of a leaked token'));
      }
      return verdicts;
    },
  };
}
