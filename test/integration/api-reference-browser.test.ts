import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { PAGE_CSP } from '../../src/views/html.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// The API reference page (/docs/api) in a real browser (Debian's chromium, driven by
// playwright-core), at a desktop and a phone width: under the strict page policy, with no console
// error or CSP violation, nothing loaded from another origin, nothing wider than the screen, and
// every operation of /openapi.json on it.
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = process.env.TESSERA_UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url)) : `${tmpdir()}/tessera-screenshots-${process.pid}/`;

describe('the API reference page in a browser', () => {
  const suite = tesseraForSuite();
  let browser: Browser | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: these tests drive Debian's chromium. Install it with \`apt-get install -y chromium\` (.ci/run does).`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  }, 60_000);

  for (const [label, viewport] of [['1280 px', { width: 1280, height: 900 }], ['390 px (a phone)', { width: 390, height: 844 }]] as const) {
    it(`shows every operation at ${label}, under the page policy, with nothing from elsewhere and no violation`, async () => {
      const document = (await (await fetch(`${suite.tessera.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
      const operationIds = Object.values(document.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));

      const context = await browser!.newContext({ viewport });
      // Runs before the page and outside its policy: a violation becomes a console error.
      await context.addInitScript({
        content: `document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));`,
      });
      const problems: string[] = [];
      const requested: string[] = [];
      const page = await context.newPage();
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(`uncaught ${error.message}`));
      page.on('request', (request) => requested.push(request.url()));

      const response = await page.goto(`${suite.tessera.url}/docs/api`);
      await page.waitForLoadState('load');
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toBe(PAGE_CSP);
      expect(await page.locator('h1').innerText()).toContain('API reference');
      // Each operation has its section, and the contents link to it.
      for (const id of operationIds) {
        expect(await page.locator(`section#${id}`).count()).toBe(1);
        expect(await page.locator(`nav a[href="#${id}"]`).count()).toBe(1);
      }
      expect(await page.locator('section#createPersonalToken').innerText()).toMatch(/POST\s+\/api\/v1\/tokens[\s\S]*expires_in_days[\s\S]*201[\s\S]*token/);
      expect(await page.locator('#schema-Error').innerText()).toContain('message');
      // The stylesheet applied (its own, from Tessera), and nothing is wider than the screen.
      // (Evaluated in the page, as text: this file is compiled without the DOM's types.)
      expect(await page.evaluate("getComputedStyle(document.querySelector('.method-post')).backgroundColor")).not.toBe('rgba(0, 0, 0, 0)');
      const tooWide = await page.evaluate(`[...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > ${viewport.width} + 0.5).map((el) => el.tagName + '.' + el.className + ': ' + (el.textContent ?? '').slice(0, 60))`);
      expect(tooWide).toEqual([]);
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(viewport.width);
      expect(requested.filter((url) => new URL(url).origin !== new URL(suite.tessera.url).origin)).toEqual([]);
      expect(requested.some((url) => url.endsWith('/assets/tessera.css'))).toBe(true);

      // The link to the document leads to it.
      await page.click('a[href="/openapi.json"] >> nth=0');
      await page.waitForLoadState('load');
      expect(new URL(page.url()).pathname).toBe('/openapi.json');

      await page.goto(`${suite.tessera.url}/docs/api`);
      await page.screenshot({ path: `${SCREENSHOTS}api-reference${viewport.width < 500 ? '-phone' : ''}.png`, animations: 'disabled', caret: 'hide' });
      if (viewport.width > 500) await page.locator('section#createPersonalToken').screenshot({ path: `${SCREENSHOTS}api-reference-operation.png`, animations: 'disabled', caret: 'hide' });
      expect(problems).toEqual([]);
      await context.close();
    }, 120_000);
  }
});
