import { spawn } from 'node:child_process';

/** `promtool check metrics` (Prometheus's own linter, Debian's prometheus package) on the text: its exit code and what it said. */
export function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** Each sample of the exposition text: its name, labels and value. */
function samples(text: string): { name: string; labels: string[]; value: number }[] {
  const found = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match) found.push({ name: match[1]!, labels: (match[2] ?? '').split(',').filter(Boolean), value: Number(match[3]) });
  }
  return found;
}

const pairs = (labels: Record<string, string>) => Object.entries(labels).map(([key, value]) => `${key}="${value}"`);

/** The value of the sample with exactly these labels, or undefined. */
export function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = pairs(labels);
  return samples(text).find((s) => s.name === name && s.labels.length === wanted.length && wanted.every((pair) => s.labels.includes(pair)))?.value;
}

/** The sum of the samples of `name` that have (at least) these labels; 0 when there are none. */
export function sumOf(text: string, name: string, labels: Record<string, string>): number {
  const wanted = pairs(labels);
  return samples(text)
    .filter((s) => s.name === name && wanted.every((pair) => s.labels.includes(pair)))
    .reduce((sum, s) => sum + s.value, 0);
}
