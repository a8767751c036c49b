import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type BrowserOutcome = { opened: true; command: string } | { opened: false; reason: string };

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The command that opens a URL: $BROWSER (its first entry; `%s` stands for the URL, else the URL
 * is appended), else `xdg-open` when it is on the PATH (`open` on macOS). No shell is involved:
 * the URL, which comes from the server, is one argument and is never interpreted.
 */
export function browserCommand(url: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string[] | undefined {
  const configured = env.BROWSER?.split(':').map((entry) => entry.trim()).find(Boolean);
  if (configured) {
    const words = configured.split(/\s+/);
    return words.some((word) => word.includes('%s')) ? words.map((word) => word.replaceAll('%s', url)) : [...words, url];
  }
  const opener = platform === 'darwin' ? 'open' : 'xdg-open';
  return onPath(opener, env) ? [opener, url] : undefined;
}

/** Starts a browser on `url` and lets it run on its own. Never throws: it says what went wrong. */
export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<BrowserOutcome> {
  const command = browserCommand(url, env);
  if (!command) return Promise.resolve({ opened: false, reason: 'no browser is known here (set $BROWSER, or install xdg-open)' });
  const [program, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    try {
      const child = spawn(program, args, { detached: true, stdio: 'ignore', env });
      child.once('error', (error) => resolve({ opened: false, reason: `${program}: ${(error as NodeJS.ErrnoException).code ?? error.message}` }));
      child.once('spawn', () => {
        child.unref();
        resolve({ opened: true, command: program });
      });
    } catch (error) {
      resolve({ opened: false, reason: `${program}: ${(error as Error).message}` });
    }
  });
}
