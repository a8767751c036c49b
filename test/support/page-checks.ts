import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';

// Debian's chromium, driven by playwright-core, for the server-rendered pages: contexts that report
// console errors, CSP violations and each document's policy; the checks every page must pass
// (no sideways scrolling, no serious accessibility violation by axe-core).

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: these tests drive Debian's chromium. Install it with \`apt-get install -y chromium\` (.ci/run does).`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** What the pages of a browser did wrong, and the policy of every document they loaded. */
export interface PageWatch {
  /** Console errors (CSP violations among them) and uncaught exceptions, with the page's URL. */
  problems: string[];
  /** The Content-Security-Policy of every document that was not a redirect. */
  policies: { url: string; status: number; csp: string | undefined; contentType: string | undefined }[];
}

/** A browser context whose pages report console errors, CSP violations and page policies into `watch`. */
export async function watchedContext(browser: Browser, watch: PageWatch, options: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> {
  const created = await browser.newContext(options);
  // Runs before the page's own scripts and is not subject to its CSP: any violation becomes a
  // console error, which the listener below collects.
  await created.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`,
  });
  created.on('page', (page) => {
    page.on('console', (message) => {
      if (message.type() === 'error') watch.problems.push(`${page.url()}: ${message.text()}${message.location().url ? ` (${message.location().url})` : ''}`);
    });
    page.on('pageerror', (error) => watch.problems.push(`${page.url()}: uncaught ${error.message}`));
    page.on('response', (response) => {
      if (response.request().resourceType() === 'document' && (response.status() < 300 || response.status() >= 400)) {
        watch.policies.push({ url: response.url(), status: response.status(), csp: response.headers()['content-security-policy'], contentType: response.headers()['content-type'] });
      }
    });
  });
  return created;
}

/**
 * Clicks something that submits a form or follows a link, and waits for the next document (any
 * status). The document clicked in is marked first and the wait lasts until a document without the
 * mark has loaded: the response can arrive before its document replaces the old one (a form that a
 * script submits later, as the passkey page's), and the old one is already "loaded". The mark is an
 * attribute, waited for with a selector: page.waitForFunction evaluates its predicate with eval,
 * which the pages' CSP refuses once the wait has to poll.
 */
export async function navigate(page: Page, click: () => Promise<void>): Promise<Response> {
  await page.evaluate('document.documentElement.setAttribute("data-tessera-leaving", "")');
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame() && (r.status() < 300 || r.status() >= 400)), click()]);
  await page.waitForSelector('html:not([data-tessera-leaving])', { state: 'attached' });
  await page.waitForLoadState('load');
  return response;
}

/** How much wider than the window the page is (0: no sideways scrolling). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as Promise<number>;
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's serious and critical violations on the page (WCAG 2.1 A and AA rules), as
 * "rule: target" lines. axe is evaluated through the browser's debugging protocol, which the
 * page's CSP does not govern, so the page keeps its policy.
 */
export async function seriousAccessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const results = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })`)) as {
    violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[];
  };
  return results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')}`));
}

/**
 * What is wrong with the page as it is now, on a phone (390 px) and a desktop (1280 px): sideways
 * scrolling and axe's serious or critical violations, one line each naming the width and the path
 * (so `expect(await pageProblems(page)).toEqual([])` says where). The viewport is left at 1280 px.
 */
export async function pageProblems(page: Page): Promise<string[]> {
  const problems: string[] = [];
  const path = new URL(page.url()).pathname;
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    const overflow = await horizontalOverflow(page);
    if (overflow > 0) problems.push(`${path} at ${width} px: ${overflow} px of sideways scrolling`);
    for (const violation of await seriousAccessibilityViolations(page)) problems.push(`${path} at ${width} px: ${violation}`);
  }
  return problems;
}
