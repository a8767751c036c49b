import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { launchChromium, navigate, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { startUpstreamProvider, type UpstreamProvider } from '../support/upstream-provider.ts';
import { startGitHubStandIn, type GitHubStandIn } from '../support/github-stand-in.ts';
import { recordSecret } from '../support/secret-ledger.ts';

// Each preset's sign-in, end to end in chromium, against a local stand-in answering with that
// service's claim shapes (the services themselves are not reachable from the tests and are not
// contacted: docs/sign-in-providers.md says so). ORCID, CILogon and EGI Check-in (a Keycloak
// realm) are stock oidc-provider instances with those claims; GitHub is a small server of
// GitHub's documented OAuth endpoints and /user, /user/emails. Only the issuer (and GitHub's
// endpoints) are pointed at the stand-ins: scopes, username claims and everything else are the
// preset's own.

const SECRET = 'preset-client-secret-for-the-tests-0123456789';
const EGI_VO = 'urn:mace:egi.eu:group:vo.deposit.example.org:role=member#aai.egi.eu';
const CILOGON_GROUP = 'CO:COU:depositors:members:active';

describe('the identity-provider presets, each against a stand-in with its claim shapes', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let browser: Browser | undefined;
  let issuer: string;
  let orcid: UpstreamProvider;
  let cilogon: UpstreamProvider;
  let egi: UpstreamProvider;
  let github: GitHubStandIn;
  let institution: UpstreamProvider;
  const watch: PageWatch = { problems: [], policies: [] };

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    recordSecret('upstream_client_secret', SECRET);
    // ORCID: the subject is the ORCID iD; names, no e-mail (the usual release).
    orcid = await startUpstreamProvider({ '0000-0002-1825-0097': { given_name: 'Josiah', family_name: 'Carberry', name: 'Josiah Carberry' } }, { claims: { openid: ['sub', 'given_name', 'family_name', 'name'] } });
    // CILogon: a CILogon user URI as subject, the home institution's eppn and group memberships.
    cilogon = await startUpstreamProvider(
      { 'http://cilogon.org/serverA/users/1234': { eppn: 'jdoe@uni.example.edu', email: 'jdoe@uni.example.edu', email_verified: true, given_name: 'Jane', family_name: 'Doe', isMemberOf: [CILOGON_GROUP], idp: 'urn:mace:incommon:uni.example.edu', idp_name: 'Example University', affiliation: 'member@uni.example.edu' } },
      { claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name'], 'org.cilogon.userinfo': ['eppn', 'isMemberOf', 'idp', 'idp_name', 'affiliation'] } },
    );
    // EGI Check-in (Keycloak): the voperson_id as subject, entitlements for VO membership.
    egi = await startUpstreamProvider(
      { '6a3b1c2d0e9f@egi.eu': { preferred_username: 'mcurie', email: 'marie@institut.example.fr', email_verified: true, name: 'Marie Curie', eduperson_entitlement: [EGI_VO, 'urn:mace:egi.eu:group:other#aai.egi.eu'], voperson_id: '6a3b1c2d0e9f@egi.eu' } },
      { claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', 'name', 'eduperson_entitlement', 'voperson_id'] } },
    );
    github = await startGitHubStandIn(
      { clientId: 'Iv1.0123456789abcdef', clientSecret: SECRET, redirectUri: `${issuer}/login/github/callback` },
      { id: 583231, login: 'octocat', name: 'The Octocat', email: null, emails: [{ email: 'octo@private.example', primary: false, verified: false }, { email: 'octocat@github.example', primary: true, verified: true }] },
    );
    for (const [provider, id] of [[orcid, 'orcid'], [cilogon, 'cilogon'], [egi, 'egi']] as const) provider.register({ clientId: 'tessera', clientSecret: SECRET, redirectUri: `${issuer}/login/${id}/callback` });
    // An institution's provider to which Tessera authenticates with a private key (private_key_jwt).
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    institution = await startUpstreamProvider({ kvothe: { preferred_username: 'kvothe', email: 'kvothe@university.example', email_verified: false } });
    institution.register({ clientId: 'tessera', redirectUri: `${issuer}/login/inst/callback`, jwks: { keys: [{ ...keys.publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' }] } });
    // EGI's secret comes from a file, as from a Docker or Kubernetes secret (with its newline).
    const secrets = mkdtempSync(join(tmpdir(), 'tessera-idp-'));
    writeFileSync(join(secrets, 'egi-secret'), `${SECRET}\n`, { mode: 0o600 });
    db = await createTestDatabase();
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      {
        identityProviders: [
          { id: 'orcid', name: 'ORCID', preset: 'orcid', issuer: orcid.issuer, clientId: 'tessera', clientSecret: SECRET },
          { id: 'cilogon', name: 'CILogon', preset: 'cilogon', issuer: cilogon.issuer, clientId: 'tessera', clientSecret: SECRET, scopeRules: [{ claim: 'isMemberOf', value: CILOGON_GROUP, scopes: ['deposit:actions'] }] },
          { id: 'egi', name: 'EGI Check-in', preset: 'keycloak', issuer: egi.issuer, clientId: 'tessera', clientSecretFile: join(secrets, 'egi-secret'), scopeRules: [{ claim: 'eduperson_entitlement', value: EGI_VO, scopes: ['deposit:write'] }] },
          { id: 'inst', name: 'Institution', issuer: institution.issuer, clientId: 'tessera', privateKey: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), privateKeyAlgorithm: 'ES256' },
          {
            id: 'github',
            name: 'GitHub',
            preset: 'github',
            issuer: github.base,
            clientId: 'Iv1.0123456789abcdef',
            clientSecret: SECRET,
            endpoints: { authorization: `${github.base}/login/oauth/authorize`, token: `${github.base}/login/oauth/access_token`, user: `${github.base}/user`, emails: `${github.base}/user/emails` },
          },
        ],
      },
    );
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await Promise.all([orcid?.close(), cilogon?.close(), egi?.close(), github?.close(), institution?.close()]);
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  /** Signs in with the provider's button; at an OpenID stand-in, through its development pages. */
  async function signInWith(name: string, login?: string): Promise<Page> {
    const context = await watchedContext(browser!, watch, { viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${issuer}/login`);
    await navigate(page, () => page.click(`a:has-text("Sign in with ${name}")`));
    if (login) {
      // A page other than the provider's login form says what went wrong.
      if (!(await page.$('input[name="login"]'))) throw new Error(`no login form at ${page.url()}: ${await page.textContent('body')}`);
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'anything');
      await navigate(page, () => page.click('button[type="submit"]'));
      await navigate(page, () => page.click('button:has-text("Continue")'));
    }
    expect(page.url()).toBe(`${issuer}/settings/tokens`);
    return page;
  }

  const account = async (username: string) => {
    const user = (await tessera.core.accounts.findUser(username))!;
    expect(user).not.toBeNull();
    return { user, links: (await tessera.core.identityProviders.listLinks(user.id)).map((l) => [l.provider, l.subject]) };
  };

  it('ORCID: the account is named by the ORCID iD, which is its subject', async () => {
    const page = await signInWith('ORCID', '0000-0002-1825-0097');
    expect(await page.textContent('nav')).toContain('Sign out 0000-0002-1825-0097');
    const { user, links } = await account('0000-0002-1825-0097');
    expect(links).toEqual([['orcid', '0000-0002-1825-0097']]);
    expect([user.email, user.allowedScopes]).toEqual([null, ['read']]);
    await page.context().close();
  }, 60_000);

  it('CILogon: the username comes from eppn, the group membership grants deposit:actions', async () => {
    const page = await signInWith('CILogon', 'http://cilogon.org/serverA/users/1234');
    const { user, links } = await account('jdoe');
    expect(links).toEqual([['cilogon', 'http://cilogon.org/serverA/users/1234']]);
    expect(user.email).toBe('jdoe@uni.example.edu');
    expect(user.allowedScopes.sort()).toEqual(['deposit:actions', 'read']);
    await page.context().close();
  }, 60_000);

  it('EGI Check-in (Keycloak realm): preferred_username, and the VO entitlement grants deposit:write', async () => {
    const page = await signInWith('EGI Check-in', '6a3b1c2d0e9f@egi.eu');
    const { user, links } = await account('mcurie');
    expect(links).toEqual([['egi', '6a3b1c2d0e9f@egi.eu']]);
    expect(user.allowedScopes.sort()).toEqual(['deposit:write', 'read']);
    await page.context().close();
  }, 60_000);

  it('GitHub (plain OAuth 2 and its user API): the numeric id is the subject, the login the username, the primary verified e-mail kept', async () => {
    const page = await signInWith('GitHub');
    const { user, links } = await account('octocat');
    expect(links).toEqual([['github', '583231']]);
    expect(user.email).toBe('octocat@github.example');
    await page.context().close();
    // A second sign-in is the same account.
    const again = await signInWith('GitHub');
    expect(await again.textContent('nav')).toContain('Sign out octocat');
    expect((await tessera.core.database.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE username LIKE 'octocat%'")).rows[0]!.n).toBe(1);
    await again.context().close();
    // A disabled account does not sign in through its provider either: a page, no session.
    await tessera.core.accounts.setDisabled('octocat', true, { actor: 'test' });
    const context = await watchedContext(browser!, watch, { viewport: { width: 1280, height: 900 } });
    const page2 = await context.newPage();
    await page2.goto(`${issuer}/login`);
    const refused = await navigate(page2, () => page2.click('a:has-text("Sign in with GitHub")'));
    expect(refused.status()).toBe(403);
    expect(await page2.textContent('h1')).toBe('Account disabled');
    expect((await context.cookies()).map((c) => c.name)).not.toContain('tessera_session');
    await context.close();
  }, 60_000);

  it('a plain OpenID provider with private_key_jwt: an unverified e-mail is not kept', async () => {
    const page = await signInWith('Institution', 'kvothe');
    const { user, links } = await account('kvothe');
    expect(links).toEqual([['inst', 'kvothe']]);
    expect(user.email).toBeNull();
    await page.context().close();
  }, 60_000);

  it('ran every Tessera page without console errors or CSP violations', () => {
    expect(watch.problems.filter((problem) => problem.startsWith(issuer) && !/Failed to load resource: the server responded with a status of 403/.test(problem))).toEqual([]);
  });
});
