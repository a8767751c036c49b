import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './private-redis.ts';

// A real SMTP server, independent of the sender: Debian's python3-aiosmtpd with its Mailbox
// handler, which delivers every message into a Maildir that the tests read. `.ci/run` installs it.

const PYTHON = '/usr/bin/python3';

export interface DeliveredMessage {
  headers: Record<string, string>;
  /** The body, transfer encoding undone. */
  text: string;
}

export interface SmtpMailbox {
  port: number;
  /** Every message delivered so far. */
  messages(): Promise<DeliveredMessage[]>;
  /** The first message to `to` beyond the `seen` first ones, waiting for it (generous bound). */
  waitForMessage(to: string, seen?: number): Promise<DeliveredMessage>;
  stop(): Promise<void>;
}

/** Quoted-printable (RFC 2045 §6.7): soft line breaks and =XX octets. */
function decodeQuotedPrintable(body: string): string {
  const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

function parse(raw: string): DeliveredMessage {
  const split = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers['content-transfer-encoding'] ?? '').toLowerCase();
  const text = encoding === 'quoted-printable' ? decodeQuotedPrintable(body) : encoding === 'base64' ? Buffer.from(body, 'base64').toString('utf8') : body;
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

async function listening(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`aiosmtpd exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('aiosmtpd did not listen within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startSmtpMailbox(): Promise<SmtpMailbox> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-maildir-'));
  // A Maildir's three folders (Python's mailbox makes them only for a directory it creates itself).
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub));
  const port = await freePort();
  const child = spawn(PYTHON, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    await listening(port, child);
  } catch (error) {
    child.kill();
    throw new Error(`${(error as Error).message}: ${stderr}`);
  }

  async function messages(): Promise<DeliveredMessage[]> {
    const found: { name: string; raw: string }[] = [];
    for (const sub of ['new', 'cur']) {
      const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
      for (const name of names) found.push({ name, raw: await readFile(join(dir, sub, name), 'utf8') });
    }
    // Maildir names begin with the delivery time: oldest first.
    return found.sort((a, b) => (a.name < b.name ? -1 : 1)).map((m) => parse(m.raw));
  }

  return {
    port,
    messages,
    async waitForMessage(to, seen = 0) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const mine = (await messages()).filter((m) => (m.headers.to ?? '').includes(to));
        if (mine.length > seen) return mine[seen]!;
        if (Date.now() > deadline) throw new Error(`no message to ${to} within 20 s`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
