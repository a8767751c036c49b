import { ledgerDir, recordSecret, recordSecretsIn } from './secret-ledger.ts';

// Jest runs this before each test file (setupFilesAfterEnv). With TESSERA_SECRET_LEDGER set, it
// wraps the global fetch, through which the tests (and openid-client, HttpBrowser, the client
// library) talk to Tessera, and records the secrets that pass: passwords and client credentials
// sent, tokens, sessions and secrets answered. See secret-ledger.ts.

/** Cookies whose values are credentials. */
const SECRET_COOKIES: Readonly<Record<string, string>> = { tessera_session: 'session_cookie', tessera_login_csrf: 'csrf_cookie', _session: 'oidc_session_cookie' };

function recordForm(text: string): void {
  recordSecretsIn(Object.fromEntries(new URLSearchParams(text)));
}

function recordBody(body: unknown, contentType: string): void {
  if (body instanceof URLSearchParams) return recordForm(body.toString());
  if (typeof body !== 'string') return;
  if (contentType.includes('json')) {
    try {
      recordSecretsIn(JSON.parse(body));
    } catch {
      // Not JSON after all (a malformed-input test): nothing to record.
    }
  } else if (contentType.includes('x-www-form-urlencoded')) recordForm(body);
}

function recordRequest(input: Parameters<typeof fetch>[0], init: RequestInit | undefined): void {
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  const authorization = headers.get('authorization') ?? '';
  const basic = /^basic\s+(\S+)$/i.exec(authorization);
  if (basic) {
    recordSecret('basic_credentials', basic[1]);
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    // RFC 6749 §2.3.1: the client id and secret are form-encoded before they are joined.
    const secret = decoded.slice(decoded.indexOf(':') + 1);
    try {
      recordSecret('client_secret', decodeURIComponent(secret.replace(/\+/g, ' ')));
    } catch {
      recordSecret('client_secret', secret);
    }
  }
  const url = new URL(input instanceof Request ? input.url : String(input));
  recordSecretsIn(Object.fromEntries(url.searchParams));
  recordBody(init?.body, headers.get('content-type') ?? '');
}

async function recordResponse(res: Response): Promise<void> {
  for (const cookie of res.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const eq = pair!.indexOf('=');
    const kind = SECRET_COOKIES[pair!.slice(0, eq).trim()];
    if (kind) recordSecret(kind, decodeURIComponent(pair!.slice(eq + 1).trim()));
  }
  const location = res.headers.get('location');
  if (location) {
    // An authorization code (or an error) on its way back to the client.
    const target = new URL(location, res.url || 'http://localhost');
    recordSecret('authorization_code', target.searchParams.get('code'));
    recordSecretsIn(Object.fromEntries(new URLSearchParams(target.hash.slice(1))));
  }
  if (!(res.headers.get('content-type') ?? '').includes('json')) return;
  try {
    recordSecretsIn(JSON.parse(await res.clone().text()));
  } catch {
    // An answer that is not JSON after all, or cut off: nothing to record.
  }
}

if (ledgerDir()) {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    recordRequest(input, init);
    const res = await original(input, init);
    await recordResponse(res);
    return res;
  };
}
