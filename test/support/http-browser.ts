/**
 * A small HTTP user agent for page flows: keeps cookies, follows redirects, submits forms. It
 * speaks plain HTTP to the real server; pages are checked through their HTML.
 */
export class HttpBrowser {
  private readonly cookies = new Map<string, string>();
  lastUrl = '';

  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly via: { from: string; to: string } | undefined;

  /**
   * `headers` go with every request (e.g. X-Forwarded-For, to appear as another client address).
   * `via` sends every request for the origin `from` (the issuer) to the node at `to`, as a load
   * balancer that keeps this browser on one node of several.
   */
  constructor(base: string, headers: Record<string, string> = {}, via?: { from: string; to: string }) {
    this.base = base;
    this.headers = headers;
    this.via = via && { from: new URL(via.from).origin, to: new URL(via.to).origin };
  }

  private target(url: string): string {
    if (!this.via) return url;
    const parsed = new URL(url);
    if (parsed.origin !== this.via.from) return url;
    return new URL(parsed.pathname + parsed.search, this.via.to).toString();
  }

  private store(res: Response) {
    for (const header of res.headers.getSetCookie()) {
      const [pair] = header.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(header) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  async request(path: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ status: number; html: string; url: string; headers: Headers }> {
    let url = new URL(path, this.base).toString();
    let method = init.method ?? (init.form ? 'POST' : 'GET');
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hops = 0; hops < 10; hops++) {
      const res = await fetch(this.target(url), {
        method,
        redirect: 'manual',
        headers: { ...this.headers, cookie: this.cookieHeader(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body,
      });
      this.store(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        url = new URL(location, url).toString();
        method = 'GET';
        body = undefined;
        continue;
      }
      this.lastUrl = url;
      return { status: res.status, html: await res.text(), url, headers: res.headers };
    }
    throw new Error('too many redirects');
  }

  /** Submits the page's form: hidden inputs plus `fields` (and the clicked button's name/value). */
  submit(page: { html: string; url: string }, fields: Record<string, string>): ReturnType<HttpBrowser['request']> {
    const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/.exec(page.html);
    if (!form) throw new Error(`no form on the page:\n${page.html}`);
    const hidden: Record<string, string> = {};
    for (const input of form[2]!.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
      if (name) hidden[name] = value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
    }
    return this.request(new URL(form[1]!.replace(/&amp;/g, '&'), page.url).toString(), { form: { ...hidden, ...fields } });
  }
}
