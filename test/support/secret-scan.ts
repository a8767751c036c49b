import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SECRET_MIN_LENGTH, type LedgerSecret } from './secret-ledger.ts';

// Searches log files for many secrets at once, in one pass over each file: a rolling hash of every
// SECRET_MIN_LENGTH-byte window is looked up among the secrets' first windows, and only a window
// that matches one is compared in full. Hundreds of megabytes and thousands of secrets take seconds.

/** A secret found in a log: never the value itself, only a digest prefix to tell secrets apart. */
export interface Finding {
  kind: string;
  /** The first 12 hex digits of the secret's SHA-256. */
  digest: string;
  /** The test file that recorded the secret. */
  recordedBy: string;
  /** How it appeared: as sent, percent-encoded or JSON-escaped. */
  form: string;
  file: string;
  line: number;
}

export interface ScanResult {
  findings: Finding[];
  secrets: number;
  files: number;
  lines: number;
  bytes: number;
}

const WINDOW = SECRET_MIN_LENGTH;
// Bound once: under jest every read of a global (Math) in the hot loop costs a lookup through the
// test context's global object, 40 times slower than the arithmetic itself.
const imul = Math.imul;
const BASE = 257;
const FILTER_BITS = 22;

/** B^(WINDOW-1) in 32-bit arithmetic: what the byte leaving the window contributed. */
const LEAVING = (() => {
  let p = 1;
  for (let i = 1; i < WINDOW; i++) p = imul(p, BASE);
  return p;
})();

function hashOf(bytes: Uint8Array, from: number): number {
  let h = 0;
  for (let i = from; i < from + WINDOW; i++) h = (imul(h, BASE) + bytes[i]!) | 0;
  return h;
}

interface Needle {
  secret: LedgerSecret;
  form: string;
  bytes: Buffer;
}

/** The forms in which a secret may reach a log line: as it is, percent-encoded (a URL), JSON-escaped. */
function formsOf(value: string): [string, string][] {
  const forms: [string, string][] = [['as sent', value]];
  const encoded = encodeURIComponent(value);
  if (encoded !== value) forms.push(['percent-encoded', encoded]);
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) forms.push(['JSON-escaped', escaped]);
  return forms;
}

const digestOf = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 12);

function lineAt(bytes: Buffer, position: number): number {
  let line = 1;
  for (let i = bytes.indexOf(10); i !== -1 && i < position; i = bytes.indexOf(10, i + 1)) line++;
  return line;
}

function countLines(bytes: Buffer): number {
  let lines = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
  return bytes.length > 0 && bytes[bytes.length - 1] !== 10 ? lines + 1 : lines;
}

/** Searches every file of `logFiles` for every secret; one finding per secret and file (its first line). */
export function scanForSecrets(secrets: LedgerSecret[], logFiles: string[]): ScanResult {
  const byHash = new Map<number, Needle[]>();
  const filter = new Uint8Array(1 << (FILTER_BITS - 3));
  const mask = (1 << FILTER_BITS) - 1;
  for (const secret of secrets) {
    for (const [form, text] of formsOf(secret.value)) {
      const bytes = Buffer.from(text, 'utf8');
      if (bytes.length < WINDOW) continue;
      const h = hashOf(bytes, 0);
      const bit = h & mask;
      filter[bit >>> 3]! |= 1 << (bit & 7);
      const list = byHash.get(h);
      if (list) list.push({ secret, form, bytes });
      else byHash.set(h, [{ secret, form, bytes }]);
    }
  }

  const findings: Finding[] = [];
  let lines = 0;
  let total = 0;
  for (const file of logFiles) {
    const bytes = readFileSync(file);
    total += bytes.length;
    lines += countLines(bytes);
    if (bytes.length < WINDOW) continue;
    const found = new Set<Needle>();
    let h = hashOf(bytes, 0);
    for (let start = 0; ; start++) {
      const bit = h & mask;
      if (filter[bit >>> 3]! & (1 << (bit & 7))) {
        for (const needle of byHash.get(h) ?? []) {
          const end = start + needle.bytes.length;
          if (!found.has(needle) && end <= bytes.length && bytes.subarray(start, end).equals(needle.bytes)) {
            found.add(needle);
            findings.push({ kind: needle.secret.kind, digest: digestOf(needle.secret.value), recordedBy: needle.secret.test, form: needle.form, file: basename(file), line: lineAt(bytes, start) });
          }
        }
      }
      const next = start + WINDOW;
      if (next >= bytes.length) break;
      h = (imul((h - imul(bytes[start]!, LEAVING)) | 0, BASE) + bytes[next]!) | 0;
    }
  }
  return { findings, secrets: secrets.length, files: logFiles.length, lines, bytes: total };
}

/** The secrets and log files a ledger directory holds (none when it does not exist). */
export function readLedger(dir: string): { secrets: LedgerSecret[]; logFiles: string[] } {
  const list = (sub: string) => (existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)).map((name) => join(dir, sub, name)) : []);
  const seen = new Set<string>();
  const secrets: LedgerSecret[] = [];
  for (const file of list('secrets')) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      const secret = JSON.parse(line) as LedgerSecret;
      if (seen.has(secret.value)) continue;
      seen.add(secret.value);
      secrets.push(secret);
    }
  }
  return { secrets, logFiles: list('logs') };
}
