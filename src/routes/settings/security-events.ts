import type { AuditEvent } from '../../audit/audit-log.ts';

// The security page's words for audit events (docs/audit.md lists the actions): what happened,
// in a few words, and its details as short readable lines, never the raw JSON. An action this
// list does not know is shown by its name and its details as they are.

/** An event as its owner reads it. */
export interface DescribedEvent {
  what: string;
  details: string[];
}

const CHANNELS: Record<string, string> = {
  api: 'the API (password login)',
  settings: 'the settings pages',
  browser: 'these settings pages',
  oauth: 'the sign-in page of an app or device',
  provider: 'an identity provider',
};

/** Why a sign-in through an identity provider ended without one (sign_in.provider_failed). */
const PROVIDER_FAILURES: Record<string, string> = {
  limited: 'too many sign-ins started from the address',
  expired: 'the answer was already used or came too late',
  other_browser: 'the answer came to another browser',
  refused: 'the provider did not sign the person in',
  rejected: 'the answer did not pass the checks',
  unavailable: 'the provider could not be reached',
  disabled: 'the account is disabled',
  not_linked: 'no account is linked',
  linked_elsewhere: 'the identity belongs to another account',
  link_session_lost: 'the session ended while linking',
};

const FAILURE_REASONS: Record<string, string> = {
  wrong_password: 'wrong password',
  disabled: 'the account is disabled',
  unknown_user: 'no such account',
  no_password: 'the account has no password (it signs in through an identity provider)',
};

const METHODS: Record<string, string> = {
  totp: 'a code from the authenticator app',
  recovery_code: 'a recovery code',
  passkey: 'a passkey',
};

const PROOFS: Record<string, string> = {
  password: 'confirmed with the password',
  code: 'confirmed with a code',
};

const TOKEN_KINDS: Record<string, string> = {
  refresh_token: 'a refresh token',
  access_token: 'an access token',
  client_credentials: 'a service token',
};

/** What a token exchange took (token.exchanged's subjectKind). */
const EXCHANGED_KINDS: Record<string, string> = {
  personal_access_token: 'a personal access token',
  access_token: 'an app\'s access token',
  session: 'an API session',
};

const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const list = (value: unknown): string | undefined => (Array.isArray(value) && value.length ? value.map(String).join(', ') : undefined);
const minutes = (seconds: unknown): string | undefined => (typeof seconds === 'number' && seconds > 0 ? `${Math.max(1, Math.ceil(seconds / 60))} min` : undefined);

/** Who did it, when it was not the owner: an administrator, a client, the service. */
function byWhom(event: AuditEvent, userId: string): string | undefined {
  const [kind, ...rest] = event.actor.split(':');
  const name = rest.join(':');
  if (event.actor === `user:${userId}`) return undefined;
  if (kind === 'cli') return `by an administrator (${name}, command line)`;
  if (kind === 'user') return 'by an administrator';
  if (kind === 'client') return `by the client ${name}`;
  if (kind === 'system') return 'by the service';
  if (kind === 'provider') return `by the sign-in through ${name}`;
  return undefined;
}

function tokenLine(details: Record<string, unknown>): string | undefined {
  const name = text(details.name);
  const hint = text(details.hint);
  if (!name && !hint) return undefined;
  return `token “${name ?? '?'}”${hint ? ` (${hint}…)` : ''}`;
}

function lines(...entries: (string | undefined | false)[]): string[] {
  return entries.filter((entry): entry is string => typeof entry === 'string' && entry !== '');
}

type Describer = (details: Record<string, unknown>) => DescribedEvent;

const DESCRIBERS: Record<string, Describer> = {
  'sign_in.succeeded': (d) => ({ what: 'Signed in', details: lines(CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`, text(d.provider) && `provider: ${String(d.provider)}`, d.created === true && 'the account was created at this sign-in') }),
  'sign_in.provider_failed': (d) => ({ what: 'Sign-in through an identity provider failed', details: lines(text(d.provider) && `provider: ${String(d.provider)}`, PROVIDER_FAILURES[String(d.reason)], text(d.error) && `answer: ${String(d.error)}`) }),
  'identity.linked': (d) => ({ what: 'Identity provider linked', details: lines(text(d.provider) && `provider: ${String(d.provider)}`, text(d.subject) && `account there: ${String(d.subject)}`, d.created === true && 'when this account was created') }),
  'identity.unlinked': (d) => ({ what: 'Identity provider unlinked', details: lines(text(d.provider) && `provider: ${String(d.provider)}`, text(d.subject) && `account there: ${String(d.subject)}`) }),
  'sign_in.failed': (d) => ({
    what: 'Failed sign-in',
    details: lines(FAILURE_REASONS[String(d.reason)], CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`, minutes(d.lockoutSeconds) && `this address is locked out for ${minutes(d.lockoutSeconds)}`),
  }),
  // Before sign_in.failed, failed sign-ins were recorded under this name.
  'login.failed': (d) => ({ what: 'Failed sign-in', details: lines(FAILURE_REASONS[String(d.reason)], CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`) }),
  'sign_in.locked': (d) => ({ what: 'Sign-in refused: too many attempts', details: lines(CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`, minutes(d.retryAfterSeconds) && `allowed again in ${minutes(d.retryAfterSeconds)}`) }),
  'sign_in.busy': (d) => ({ what: 'Sign-in refused: the service was busy', details: lines(CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`) }),
  'sign_in.second_factor.succeeded': (d) => ({
    what: 'Second step of sign-in passed',
    details: lines(METHODS[String(d.method)] && `with ${METHODS[String(d.method)]}${typeof d.recoveryCodesLeft === 'number' ? ` (${d.recoveryCodesLeft} left)` : ''}`, CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`),
  }),
  'sign_in.second_factor.failed': (d) => ({ what: 'Wrong code at the second step of sign-in', details: lines(CHANNELS[String(d.via)] && `through ${CHANNELS[String(d.via)]}`) }),
  'sign_in.second_factor.locked': (d) => ({ what: 'Second step refused: too many wrong codes', details: lines(minutes(d.retryAfterSeconds) && `allowed again in ${minutes(d.retryAfterSeconds)}`) }),
  'second_factor.enrolled': (d) => (d.method === 'passkey' ? { what: 'Passkey added', details: lines(text(d.name) && `“${String(d.name)}”`) } : { what: 'Authenticator app set up', details: lines(typeof d.recoveryCodes === 'number' && `${d.recoveryCodes} recovery codes made`) }),
  'second_factor.removed': (d) =>
    d.method === 'passkey'
      ? { what: 'Passkey removed', details: lines(text(d.name) && `“${String(d.name)}”`, PROOFS[String(d.proof)]) }
      : { what: 'Authenticator app removed', details: lines(PROOFS[String(d.proof)]) },
  'second_factor.reset': () => ({ what: 'Two-step sign-in removed', details: [] }),
  'second_factor.recovery_codes_replaced': (d) => ({ what: 'New recovery codes made', details: lines(typeof d.count === 'number' && `${d.count} codes; the old ones no longer work`) }),
  'session.created': (d) => ({ what: 'Session started', details: lines(d.via === 'browser' ? 'in a browser' : 'for the API', list(d.scopes) && `scopes: ${list(d.scopes)}`) }),
  'session.ended': (d) => ({ what: 'Session ended', details: lines(d.via === 'browser' ? 'in a browser' : d.via === 'api' ? 'for the API' : d.via === 'settings' ? (d.kind === 'oauth_pages' ? 'a sign-in at the app and device pages, from the Authorized logins page' : 'from the Authorized logins page') : undefined) }),
  'login.revoked': (d) => ({ what: 'App or device login revoked', details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, list(d.scopes) && `access: ${list(d.scopes)}`) }),
  'token.created': (d) => ({ what: 'Access token created', details: lines(tokenLine(d), list(d.scopes) && `scopes: ${list(d.scopes)}`, text(d.expiresAt) ? `expires ${String(d.expiresAt).slice(0, 10)}` : 'never expires') }),
  'token.revoked': (d) => ({ what: 'Access token revoked', details: lines(tokenLine(d)) }),
  'token.rotated': (d) => ({ what: 'Access token replaced', details: lines(tokenLine(d), text(d.newHint) && `new token ${String(d.newHint)}…`) }),
  'token.failed_use': (d) => ({ what: 'Refused use of an access token', details: lines(text(d.hint) && `token ${String(d.hint)}…`, text(d.reason) && `reason: ${String(d.reason).replaceAll('_', ' ')}`, typeof d.suppressed === 'number' && `and ${d.suppressed} more refusals not listed`) }),
  'credential.leaked': (d) => ({
    what: d.kind === 'session' ? 'Session ended: its token was found in public' : d.kind === 'personal_access_token' ? 'Access token revoked: it was found in public' : 'App or device login ended: a token of it was found in public',
    details: lines(
      d.kind === 'session' ? 'an API session token' : d.kind === 'personal_access_token' ? tokenLine(d) : `${TOKEN_KINDS[String(d.kind)] ?? 'a token'}${text(d.clientId) ? ` of the app ${String(d.clientId)}` : ''}`,
      text(d.url) ? `found at ${String(d.url)}` : 'where it was found was not said',
      text(d.source) && `in: ${String(d.source).replaceAll('_', ' ')}`,
      text(d.reporter) && `reported by the secret scanner “${String(d.reporter)}”`,
    ),
  }),
  'token.exchanged': (d) => ({
    what: 'Credential exchanged by an app for a short-lived token',
    details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, EXCHANGED_KINDS[String(d.subjectKind)] && `in exchange for ${EXCHANGED_KINDS[String(d.subjectKind)]}`, text(d.audience) && `for: ${String(d.audience)}`, list(d.scopes) && `access: ${list(d.scopes)}`),
  }),
  'device.approved': (d) => ({ what: 'Device connected', details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, list(d.scopes) && `access: ${list(d.scopes)}`, list(d.withheld) && `not granted: ${list(d.withheld)}`) }),
  'device.denied': (d) => ({ what: 'Device refused', details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, d.reason === 'no_grantable_scope' && 'none of the access it asked for may be granted') }),
  'authorization.approved': (d) => ({ what: 'App authorized', details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, list(d.scopes) && `access: ${list(d.scopes)}`, list(d.withheld) && `not granted: ${list(d.withheld)}`) }),
  'authorization.denied': (d) => ({ what: 'App refused', details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, d.reason === 'no_grantable_scope' && 'none of the access it asked for may be granted') }),
  'oauth.reuse_detected': (d) => ({
    what: 'Login ended: a used token was presented again',
    details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, 'a refresh token was used twice (a copy may exist elsewhere), so this login was ended; sign in again'),
  }),
  'oauth.token_revoked': (d) => ({
    what: 'App access revoked',
    details: lines(text(d.clientId) && `app: ${String(d.clientId)}`, TOKEN_KINDS[String(d.kind)], d.grantRevoked === true && 'the login ended with it'),
  }),
  'user.created': (d) => ({ what: 'Account created', details: lines(list(d.scopes) && `scopes: ${list(d.scopes)}`) }),
  'user.password_changed': () => ({ what: 'Password changed', details: [] }),
  'password_reset.requested': () => ({ what: 'Password reset link sent', details: ['to the e-mail address of the account'] }),
  'password_reset.completed': (d) => ({
    what: 'Password reset through an e-mailed link',
    details: lines(typeof d.sessions === 'number' && `${d.sessions} session${d.sessions === 1 ? '' : 's'} ended`, typeof d.logins === 'number' && `${d.logins} app or device login${d.logins === 1 ? '' : 's'} ended`),
  }),
  'user.password_change_refused': () => ({ what: 'Password change refused', details: ['the current password given was wrong'] }),
  'user.disabled': () => ({ what: 'Account disabled', details: [] }),
  'user.enabled': () => ({ what: 'Account enabled', details: [] }),
  'user.scopes_changed': (d) => ({ what: 'Allowed scopes changed', details: lines(list(d.scopes) && `now: ${list(d.scopes)}`) }),
  'user.unlocked': () => ({ what: 'Sign-in lockouts lifted', details: [] }),
  'user.email_changed': (d) => ({ what: 'E-mail address changed', details: lines(text(d.email) ? `now: ${String(d.email)}` : 'removed') }),
  'user.signed_out': (d) => ({
    what: 'Signed out everywhere',
    details: lines(typeof d.sessions === 'number' && `${d.sessions} session${d.sessions === 1 ? '' : 's'} ended`, typeof d.logins === 'number' && `${d.logins} app or device login${d.logins === 1 ? '' : 's'} ended`),
  }),
};

/** Details as they are, for an action without words of its own. */
function rawDetails(details: Record<string, unknown>): string[] {
  return Object.entries(details).map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(', ') : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`);
}

/** What an event was about when that was not the owner's account (an administrator's own log shows what they did to others). */
function aboutWhat(event: AuditEvent, userId: string): string | undefined {
  if (!event.subject || event.subject === `user:${userId}` || event.subject.startsWith('token:')) return undefined;
  const [kind, ...rest] = event.subject.split(':');
  const name = text(event.details.username) ?? rest.join(':');
  if (kind === 'user') return `on the account ${name}`;
  if (kind === 'client') return `on the client ${rest.join(':')}`;
  return `on ${event.subject}`;
}

export function describeEvent(event: AuditEvent, userId: string): DescribedEvent {
  const describer = DESCRIBERS[event.action];
  const described = describer ? describer(event.details) : { what: event.action, details: rawDetails(event.details) };
  // A failed sign-in's actor is the address it came from, already in the From column.
  const by = event.action.startsWith('sign_in.') ? undefined : byWhom(event, userId);
  // A device or app decision names the app already; so does a denial without a user.
  const about = event.actor === `user:${userId}` && !/^(device|authorization)\./.test(event.action) ? aboutWhat(event, userId) : undefined;
  return { ...described, details: lines(...described.details, about, by) };
}
