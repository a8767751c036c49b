import { describe, expect, it } from '@jest/globals';
import type { AuditEvent } from '../../../../src/audit/audit-log.ts';
import { describeEvent } from '../../../../src/routes/settings/security-events.ts';

const USER = '5f0e8d52-0000-4000-8000-000000000001';
const event = (action: string, actor: string, details: Record<string, unknown> = {}): AuditEvent => ({ id: 1, occurredAt: new Date(0), actor, action, subject: `user:${USER}`, ip: null, userAgent: null, details });

describe('the security page in words', () => {
  it('says what happened and who did it when it was not the owner', () => {
    expect(describeEvent(event('sign_in.failed', 'ip:192.0.2.7', { via: 'oauth', reason: 'wrong_password', lockoutSeconds: 900 }), USER)).toEqual({
      what: 'Failed sign-in',
      details: ['wrong password', 'through the sign-in page of an app or device', 'this address is locked out for 15 min'],
    });
    expect(describeEvent(event('user.disabled', 'cli:root'), USER).details).toEqual(['by an administrator (root, command line)']);
    expect(describeEvent(event('oauth.token_revoked', 'client:records-api', { kind: 'access_token', clientId: 'cli', grantRevoked: false }), USER).details).toEqual([
      'app: cli',
      'an access token',
      'by the client records-api',
    ]);
    // The owner's own actions name nobody.
    expect(describeEvent(event('token.revoked', `user:${USER}`, { name: 'nightly', hint: 'tsr_pat_Ab3x' }), USER).details).toEqual(['token “nightly” (tsr_pat_Ab3x…)']);
  });

  it('says which app exchanged which credential, for what', () => {
    const exchanged = event('token.exchanged', 'client:batch-jobs', { clientId: 'batch-jobs', subjectKind: 'personal_access_token', audience: 'https://storage.example.org', scopes: ['read', 'deposit:write'], jti: 'j1' });
    expect(describeEvent(exchanged, USER)).toEqual({
      what: 'Credential exchanged by an app for a short-lived token',
      details: ['app: batch-jobs', 'in exchange for a personal access token', 'for: https://storage.example.org', 'access: read, deposit:write', 'by the client batch-jobs'],
    });
  });

  it("says which account or client an administrator's own action was about", () => {
    const created = { ...event('user.created', `user:${USER}`, { username: 'carol', scopes: ['read'] }), subject: 'user:0000-carol' };
    expect(describeEvent(created, USER).details).toEqual(['scopes: read', 'on the account carol']);
    const client = { ...event('client.deleted', `user:${USER}`, { name: 'Portal', kind: 'web' }), subject: 'client:portal' };
    expect(describeEvent(client, USER)).toEqual({ what: 'client.deleted', details: ['name: Portal', 'kind: web', 'on the client portal'] });
  });

  it('says how a sign-in through an identity provider went, and who linked or unlinked one', () => {
    expect(describeEvent(event('sign_in.succeeded', `user:${USER}`, { via: 'provider', provider: 'uni', created: true }), USER)).toEqual({
      what: 'Signed in',
      details: ['through an identity provider', 'provider: uni', 'the account was created at this sign-in'],
    });
    expect(describeEvent(event('sign_in.provider_failed', 'ip:192.0.2.7', { via: 'provider', provider: 'uni', reason: 'refused', error: 'access_denied' }), USER)).toEqual({
      what: 'Sign-in through an identity provider failed',
      details: ['provider: uni', 'the provider did not sign the person in', 'answer: access_denied'],
    });
    expect(describeEvent(event('identity.linked', `user:${USER}`, { provider: 'uni', subject: 'ada' }), USER)).toEqual({ what: 'Identity provider linked', details: ['provider: uni', 'account there: ada'] });
    expect(describeEvent(event('identity.unlinked', 'user:0000-admin', { provider: 'uni', subject: 'ada' }), USER).details).toEqual(['provider: uni', 'account there: ada', 'by an administrator']);
    expect(describeEvent(event('user.scopes_changed', 'provider:uni', { scopes: ['read', 'deposit:actions'] }), USER).details).toEqual(['now: read, deposit:actions', 'by the sign-in through uni']);
  });

  it('tells the steps of two-step sign-in and changes to second factors', () => {
    expect(describeEvent(event('sign_in.second_factor.succeeded', `user:${USER}`, { via: 'oauth', method: 'recovery_code', recoveryCodesLeft: 7 }), USER)).toEqual({
      what: 'Second step of sign-in passed',
      details: ['with a recovery code (7 left)', 'through the sign-in page of an app or device'],
    });
    expect(describeEvent(event('sign_in.second_factor.failed', `user:${USER}`, { via: 'api', method: 'totp' }), USER).what).toBe('Wrong code at the second step of sign-in');
    expect(describeEvent(event('second_factor.removed', `user:${USER}`, { method: 'totp', proof: 'password' }), USER)).toEqual({ what: 'Authenticator app removed', details: ['confirmed with the password'] });
    expect(describeEvent(event('second_factor.enrolled', `user:${USER}`, { method: 'passkey', name: 'Laptop' }), USER)).toEqual({ what: 'Passkey added', details: ['“Laptop”'] });
  });

  it('shows an action it has no words for by its name and its details as they are', () => {
    expect(describeEvent(event('sign_in.not_yet_known', `user:${USER}`, { method: 'totp', codes: ['a', 'b'], extra: { n: 1 } }), USER)).toEqual({
      what: 'sign_in.not_yet_known',
      details: ['method: totp', 'codes: a, b', 'extra: {"n":1}'],
    });
  });
});
