/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. Tessera run by `BENCH_CPU_PROF=dir npm run
 * bench`): the functions with the most self time, and self time by package or source file.
 *
 *   node bench/profile-summary.ts <file.cpuprofile> [top=25] [function name: where its self time comes from]
 */
import { readFileSync } from 'node:fs';
import { ROOT } from './lib/child.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, callersOf] = process.argv.slice(2);
process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfTime = new Map<number, number>();
profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfTime.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  const path = url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  return { path, group: pkg ? pkg : path.startsWith('node:') ? 'node (built-in)' : path === '' ? '(native / V8)' : path };
};

const functions = new Map<string, number>();
const groups = new Map<string, number>();
for (const [id, micros] of selfTime) {
  const { callFrame } = byId.get(id)!;
  const { path, group } = where(callFrame.url);
  const name = `${callFrame.functionName || '(anonymous)'}  ${path ? `${path}:${callFrame.lineNumber + 1}` : ''}`;
  functions.set(name, (functions.get(name) ?? 0) + micros);
  groups.set(group, (groups.get(group) ?? 0) + micros);
}

const print = (title: string, entries: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((micros / total) * 100).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
  }
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s of samples\n`);
print('self time by function', functions);
print('self time by package or file', groups);

// Inclusive time (the function and everything it called) of Tessera's own functions: where the
// time of a request goes, step by step. Async continuations count where they resume.
const parentOf = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const inclusive = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const { callFrame } = byId.get(at)!;
    const { path } = where(callFrame.url);
    if (!path.startsWith('src/')) continue;
    const name = `${callFrame.functionName || '(anonymous)'}  ${path}:${callFrame.lineNumber + 1}`;
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
});
print("inclusive time of Tessera's functions (src/)", inclusive);

if (callersOf) {
  // The self time of `callersOf`, by the chain of its four nearest callers outside node's internals.
  const parent = parentOf;
  const chains = new Map<string, number>();
  for (const [id, micros] of selfTime) {
    if (byId.get(id)!.callFrame.functionName !== callersOf) continue;
    const chain: string[] = [];
    for (let at = parent.get(id); at !== undefined && chain.length < 4; at = parent.get(at)) {
      const { callFrame } = byId.get(at)!;
      if (callFrame.url.startsWith('node:')) continue;
      chain.push(`${callFrame.functionName || '(anonymous)'}@${where(callFrame.url).path.split('/').slice(-2).join('/')}:${callFrame.lineNumber + 1}`);
    }
    const key = chain.join(' < ');
    chains.set(key, (chains.get(key) ?? 0) + micros);
  }
  print(`callers of ${callersOf}`, chains);
}
