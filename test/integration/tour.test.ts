import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../support/private-redis.ts';
import { matchesShown, readTour, ShellSession, type TourCommand } from '../support/tour-runner.ts';

// docs/tour.md, run as a new user would run it: each console command typed into one bash session
// in a fresh copy of the project (its own ./var/db, dist/ built as `npm ci` builds it), its output
// compared with the page's; each browser step done in Debian's chromium. What differs from a
// person's machine, and only that: the ports (8080, 8081, 9464 may be taken here) are free ones,
// given to the two servers as PORT; a command ending in `&` writes to a log instead of the
// terminal; `read -r X` gets the value the page says to paste.

const TOUR = resolve('docs/tour.md');
const CHROMIUM = '/usr/bin/chromium';
const PROJECT_FILES = ['src', 'packages', 'bin', 'config', 'migrations', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
const ADMIN_PASSWORD = 'correct horse battery staple';

describe('the tour (docs/tour.md)', () => {
  let dir: string;
  let shell: ShellSession;
  let browser: Browser;
  let page: Page;
  const ports: Record<string, number> = {};
  /** What the reader pastes at each `read -r NAME`. */
  const pasted: Record<string, string> = {};

  /** The page's text with this run's ports. */
  const here = (text: string) => text.replace(/localhost:(8080|8081|9464)\b/g, (_, port: string) => `localhost:${ports[port]}`).replace(/\b9464\b/g, String(ports['9464']));
  const base = () => `http://localhost:${ports['8080']}`;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: this test drives Debian's chromium (apt-get install -y chromium; .ci/run does).`);
    for (const port of ['8080', '8081', '9464']) ports[port] = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'tessera-tour-'));
    for (const file of PROJECT_FILES) cpSync(resolve(file), join(dir, file), { recursive: true });
    symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
    // What `npm ci` does after installing (the package's prepare script).
    await promisify(execFile)('npm', ['run', '-s', 'build'], { cwd: dir });
    shell = new ShellSession(dir, {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'config-home'),
      LANG: 'C.UTF-8',
      // Light password hashing, as in every test.
      TESSERA_ARGON2_MEMORY_KIB: '8192',
      TESSERA_ARGON2_TIME_COST: '1',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    page = await (await browser.newContext({ viewport: { width: 1200, height: 800 } })).newPage();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await shell?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** The browser steps, by their marker's name; `during` ones run while the command before them waits. */
  const actions: Record<string, { during?: boolean; run: (printed: () => string) => Promise<void> }> = {
    'create-personal-token': {
      async run() {
        await page.goto(`${base()}/settings/tokens`);
        expect(new URL(page.url()).pathname).toBe('/login');
        await page.fill('#username', 'admin');
        await page.fill('#password', ADMIN_PASSWORD);
        await Promise.all([page.waitForURL(/\/settings\/tokens$/), page.click('button[type=submit]')]);
        await page.fill('#name', 'Upload script');
        await page.check('input[name=scopes][value="deposit:write"]');
        await Promise.all([page.waitForURL(/\/settings\/tokens\/created\?/), page.click('button:has-text("Create token")')]);
        expect(await page.locator('h1').innerText()).toBe('Token created');
        pasted.PAT = await page.locator('#new-token').inputValue();
      },
    },
    'approve-device': {
      during: true,
      async run(printed) {
        const code = await shell.waitFor(0, () => /enter the code:\s+([A-Z]{4}-[A-Z]{4})/.exec(printed())?.[1], 60_000, 'the code of `tessera login`');
        await page.goto(`${base()}/device`);
        await page.fill('#user_code', code);
        await Promise.all([page.waitForLoadState(), page.click('button[type=submit]')]);
        expect(await page.content()).toContain(code);
        await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[name=confirm][value=yes]')]);
        // The browser is signed in to the settings pages, not to the OAuth sign-in: it asks again.
        await page.fill('#username', 'admin');
        await page.fill('#password', ADMIN_PASSWORD);
        await Promise.all([page.waitForLoadState(), page.click('button[name=decision][value=approve]')]);
      },
    },
  };

  /** The command as typed here: this run's ports, a background job's output to a log. */
  function typed(command: string): string {
    let line = here(command);
    if (/\bnpm start &$/.test(line)) line = line.replace(/npm start &$/, `PORT=${ports['8080']} ISSUER=${base()} npm start > tessera.log 2>&1 &`);
    if (/\bnpm run demo &$/.test(line)) line = line.replace(/npm run demo &$/, `PORT=${ports['8081']} npm run demo > demo.log 2>&1 &`);
    return line;
  }

  it('runs every command on the page, and each prints what the page shows', async () => {
    const steps = readTour(TOUR);
    expect(steps.filter((step) => step.kind === 'action').map((step) => step.kind === 'action' && step.name)).toEqual(Object.keys(actions));
    for (const [index, step] of steps.entries()) {
      if (step.kind === 'action') {
        if (!actions[step.name]!.during) await actions[step.name]!.run(() => '');
        continue;
      }
      const next = steps[index + 1];
      const during = next?.kind === 'action' && actions[next.name]!.during ? actions[next.name]! : undefined;
      const read = /^read -r ([A-Z_]+)/.exec(step.command)?.[1];
      if (read) expect({ read, value: pasted[read] }).toEqual({ read, value: expect.any(String) });
      const running = shell.start(typed(step.command), read ? pasted[read] : undefined);
      if (during) await during.run(running.printed);
      const { output, code } = await running.finished;
      const shown = here((step as TourCommand).expected);
      expect({ command: step.command, code, output: matchesShown(output, shown) ? shown : output }).toEqual({ command: step.command, code: 0, output: shown });
      const secret = /client_secret: (tsr_cs_\S+)/.exec(output)?.[1];
      if (secret) pasted.RS_SECRET = secret;
    }
    // Both servers logged what they did, and no secret of the tour.
    const logs = ['tessera.log', 'demo.log'].map((file) => readFileSync(join(dir, file), 'utf8')).join('\n');
    expect(logs).toMatch(/Tessera is listening/);
    for (const secret of [ADMIN_PASSWORD, pasted.RS_SECRET!, pasted.PAT!]) expect(logs.includes(secret)).toBe(false);
  }, 300_000);
});
