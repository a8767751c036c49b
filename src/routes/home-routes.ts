import { Router } from 'express';
import { ADMIN_SCOPE } from '../config/admin-scope.ts';
import { sendPage, type Page } from '../http/pages.ts';
import { brandingOf, type Branding } from '../views/branding.ts';
import { html } from '../views/html.ts';
import type { CallerAuthenticator } from './settings/caller.ts';

// The start page, `/`: someone signed in in this browser finds their settings (and the console,
// if they administer); anyone else learns what this is and where to sign in, connect a device,
// read the API reference or get help.

function landingPage(branding: Branding): Page {
  return {
    title: 'Welcome',
    body: html`<h1>${branding.productName}</h1>
<p>Sign in to manage your access tokens, see your account’s security log, and connect command-line tools and devices.</p>
<div class="actions"><a class="button" href="/login">Sign in</a><a class="button secondary" href="/device">Connect a device</a></div>
<h2>For developers</h2>
<ul class="ways">
  <li><a href="/docs/api">API reference</a></li>
  <li><a href="/.well-known/openid-configuration">OpenID Connect discovery document</a></li>
</ul>
${branding.supportUrl || branding.supportEmail
  ? html`<h2>Help</h2><p>${branding.supportUrl ? html`<a href="${branding.supportUrl}">Help and support</a>` : html`Write to <a href="mailto:${branding.supportEmail}">${branding.supportEmail}</a>`}</p>`
  : ''}`,
  };
}

function homePage(o: { branding: Branding; username: string; admin: boolean; csrf: string }): Page {
  return {
    title: 'Home',
    body: html`<h1>${o.branding.productName}</h1>
<p>Signed in as <strong>${o.username}</strong>.</p>
<ul class="sections">
  <li><a href="/settings/tokens">Access tokens</a><br><span class="muted">Tokens for your scripts, with the scopes you choose.</span></li>
  <li><a href="/settings/logins">Authorized logins</a><br><span class="muted">The devices, command-line tools and apps you approved, and your sessions; revoke any of them.</span></li>
  <li><a href="/settings/sign-in">Sign-in methods</a><br><span class="muted">The identity providers linked to your account.</span></li>
  <li><a href="/settings/two-factor">Two-step sign-in</a><br><span class="muted">An authenticator app, passkeys and recovery codes.</span></li>
  <li><a href="/settings/password">Password</a><br><span class="muted">Change the password of your account.</span></li>
  <li><a href="/settings/security">Security log</a><br><span class="muted">Sign-ins, devices and token changes on your account.</span></li>
  <li><a href="/device">Connect a device</a><br><span class="muted">Enter the code a command-line tool shows you.</span></li>
  ${o.admin ? html`<li><a href="/admin">Administration</a><br><span class="muted">Users, clients, signing keys and the audit log.</span></li>` : ''}
  <li><a href="/docs/api">API reference</a></li>
</ul>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit" class="secondary">Sign out</button></form>`,
  };
}

export function createHomeRoutes({ callers }: { callers: CallerAuthenticator }): Router {
  const router = Router();
  router.get('/', async (req, res, next) => {
    // Express also matches `//` here, which is no URL of this site (nor one the credential reader can parse).
    if (req.path !== '/') {
      next();
      return;
    }
    try {
      const caller = await callers.identify(req);
      const branding = brandingOf(res);
      // Only a browser's login session counts here: a token sent by a script is no visitor.
      if (caller?.credential === 'session' && caller.via === 'cookie') {
        sendPage(res, 200, homePage({ branding, username: caller.user.username, admin: caller.scopes.includes(ADMIN_SCOPE), csrf: callers.csrfFor(caller.sessionId!) }));
        return;
      }
      sendPage(res, 200, landingPage(branding));
    } catch (error) {
      next(error);
    }
  });
  return router;
}
