import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';

// Runs a document's console blocks as a person would type them, in one bash session (variables
// carry from command to command), and compares what each prints with what the document shows.
// A document is a list of steps: `$ command` lines (a trailing backslash continues one) with the
// output the document shows for them, and `<!-- tour: name -->` markers where the reader does
// something outside the shell (in a browser), which the test performs.

export interface TourCommand {
  kind: 'command';
  command: string;
  /** What the document shows it printing; `…` stands for any text. */
  expected: string;
}

export interface TourAction {
  kind: 'action';
  name: string;
}

export type TourStep = TourCommand | TourAction;

/** The steps of a Markdown document: its console blocks' commands and its tour markers, in order. */
export function readTour(path: string): TourStep[] {
  const steps: TourStep[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  let inConsole = false;
  let current: TourCommand | undefined;
  const close = () => {
    if (current) current.expected = current.expected.replace(/\n+$/, '');
    current = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!inConsole) {
      const marker = /^<!-- tour: ([a-z-]+) -->$/.exec(line);
      if (marker) steps.push({ kind: 'action', name: marker[1]! });
      if (line === '```console') inConsole = true;
      continue;
    }
    if (line === '```') {
      close();
      inConsole = false;
      continue;
    }
    if (line.startsWith('$ ')) {
      close();
      let command = line.slice(2);
      // Continued lines keep their backslash: the shell joins them, as it would for a person.
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i]!}`;
      current = { kind: 'command', command, expected: '' };
      steps.push(current);
    } else if (current) {
      current.expected += `${line}\n`;
    }
  }
  return steps;
}

/** Whether `actual` is what the document shows: its text, `…` matching anything (within or across lines). */
export function matchesShown(actual: string, shown: string): boolean {
  const pattern = shown
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*?');
  return new RegExp(`^${pattern}$`).test(actual.replace(/\n+$/, ''));
}

/** One interactive bash, its standard output and error merged, fed one command at a time. */
export class ShellSession {
  private readonly shell: ChildProcessWithoutNullStreams;
  private output = '';
  private waiters: (() => void)[] = [];
  private sequence = 0;

  constructor(cwd: string, env: Record<string, string>) {
    this.shell = spawn('bash', ['--norc', '--noprofile'], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Job control: each background job (a server the document starts with &) in a process group of its own, stopped whole at the end.
    // And a pipeline fails when any of its commands does (`curl … | jq …` with a refused request).
    this.shell.stdin.write('set -m -o pipefail\n');
    const take = (chunk: Buffer) => {
      this.output += chunk.toString();
      for (const wake of this.waiters.splice(0)) wake();
    };
    this.shell.stdout.on('data', take);
    this.shell.stderr.on('data', take);
  }

  /** Waits until the output since `from` satisfies `done`, or throws after timeoutMs naming what it waited for. */
  async waitFor<T>(from: number, done: (text: string) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = done(this.output.slice(from));
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the shell printed:\n${this.output.slice(from)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * Starts a command (with `input`, if any, as the next line of the shell's standard input, for a
   * `read`): the returned `printed` is what it prints so far, `finished` its output and exit code.
   */
  start(command: string, input?: string): { printed: () => string; finished: Promise<{ output: string; code: number }> } {
    const from = this.output.length;
    const end = `__tour_end_${++this.sequence}__`;
    this.shell.stdin.write(`${command}\n${input !== undefined ? `${input}\n` : ''}printf '\\n${end} %s\\n' "$?"\n`);
    const finished = this.waitFor(
      from,
      (text) => {
        const at = text.indexOf(`\n${end} `);
        if (at === -1) return undefined;
        const code = /^ (\d+)\n/.exec(text.slice(at + end.length + 1));
        return code ? { output: text.slice(0, at), code: Number(code[1]) } : undefined;
      },
      120_000,
      `\`${command}\` to finish`,
    );
    return { printed: () => this.output.slice(from), finished };
  }

  async close(): Promise<void> {
    if (this.shell.exitCode !== null) return;
    const exited = new Promise((resolve) => this.shell.once('exit', resolve));
    this.shell.stdin.end('for job in $(jobs -p); do kill -TERM -- "-$job" 2>/dev/null; done; wait; exit\n');
    await exited;
  }
}
