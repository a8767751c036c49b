import { readFileSync } from 'node:fs';

/**
 * Where the CPU went while a figure was measured, in % of one core (a 2-core machine has 200%):
 * the server under test (with its threads), the load generator (a child of this process, counted
 * when it has exited), Redis, and everything else on the machine ("other": work that is not
 * ours, which skews the figure; it is reported so a disturbed run can be recognised).
 */
export interface CpuUse {
  server: number;
  generator: number;
  redis: number;
  other: number;
  machine: number;
}

/** Linux reports /proc times in USER_HZ, which is 100 on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;

/** utime, stime, cutime, cstime of a process (ticks); zeros when it is gone. */
function processTimes(pid: number | 'self'): number[] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [11, 12, 13, 14].map((i) => Number(fields[i]));
  } catch {
    return [0, 0, 0, 0];
  }
}

function machineBusyTicks(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
    return fields.slice(0, 8).reduce((sum, value, i) => (i === 3 || i === 4 ? sum : sum + value), 0);
  } catch {
    return Number.NaN;
  }
}

/** The pids of a process's living children (a supervisor's workers), none when it is gone. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The server's CPU counts its children's (the workers of TESSERA_WORKERS=N) as they are when the
 * meter starts; Redis may be several servers (a cluster's nodes).
 */
export function startCpuMeter(serverPid: number | undefined, redisPid: number | number[] | undefined): { stop(): CpuUse } {
  const ownTime = () => {
    const [, , cutime, cstime] = processTimes('self');
    return cutime! + cstime!;
  };
  const busyOf = (pids: number[]) => pids.reduce((sum, pid) => sum + processTimes(pid).slice(0, 2).reduce((a, b) => a + b, 0), 0);
  const serverPids = serverPid ? [serverPid, ...childrenOf(serverPid)] : [];
  const redisPids = redisPid === undefined ? [] : [redisPid].flat();
  const started = { at: performance.now(), machine: machineBusyTicks(), server: busyOf(serverPids), redis: busyOf(redisPids), children: ownTime() };
  return {
    stop() {
      const seconds = (performance.now() - started.at) / 1000;
      const percent = (ticks: number) => Math.round((ticks / TICKS_PER_SECOND / seconds) * 100);
      const use = {
        server: percent(busyOf(serverPids) - started.server),
        generator: percent(ownTime() - started.children),
        redis: percent(busyOf(redisPids) - started.redis),
        machine: percent(machineBusyTicks() - started.machine),
      };
      return { ...use, other: Math.max(0, use.machine - use.server - use.generator - use.redis) };
    },
  };
}

/**
 * Waits until a process is nearly idle (under `percent` of one core over 250 ms), at most
 * `timeoutMs`: after a load that leaves work queued (a login storm's hashes), so that the next
 * figure does not pay for it. Returns whether it settled.
 */
export async function settle(pid: number, { percent = 5, timeoutMs = 10_000 } = {}): Promise<boolean> {
  const busy = () => processTimes(pid).slice(0, 2).reduce((a, b) => a + b, 0);
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const before = busy();
    await new Promise((resolve) => setTimeout(resolve, 250));
    if (((busy() - before) / TICKS_PER_SECOND / 0.25) * 100 < percent) return true;
  }
  return false;
}
