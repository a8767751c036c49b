// A steady load of concurrent requests across a set of probes, every answer recorded with its
// time, for the resilience scenarios (test/resilience/): what was answered while a store was
// away, whether anything hung, and when each probe succeeded again.

export interface Answer {
  status: number;
  retryAfter: string | null;
  /** The body as JSON, or its text when it is not JSON. */
  body: unknown;
}

export interface Probe {
  name: string;
  send(signal: AbortSignal): Promise<Response>;
  /** Whether the answer is the right one when the stores serve (an error answer never is). */
  succeeded(answer: Answer): boolean;
  /** One request at a time (a refresh token's rotation chain). */
  exclusive?: boolean;
  /** Told of every answer (a refresh chain moves on to its new token). */
  onAnswer?(answer: Answer): void;
  /** True once the probe has nothing more to send (a refresh chain whose login ended). */
  retired?(): boolean;
}

export type Outcome = 'success' | 'unavailable' | 'wrong' | 'no-answer';

export interface Sample {
  probe: string;
  startedAt: number;
  answeredAt: number;
  /** 0 when no answer came within the bound, or the connection failed. */
  status: number;
  outcome: Outcome;
  /** For a wrong answer or none: the status and what the body says (never a success's body). */
  detail?: string;
}

export interface LoadOptions {
  /** Requests in flight at once. */
  concurrency: number;
  /** Each worker's pause between two requests, so that the load leaves the machine room to recover. */
  pauseMs: number;
  /** A request not answered within this is recorded as 'no-answer' (a hang). */
  answerWithinMs: number;
}

export interface SteadyLoad {
  samples: Sample[];
  /** Stops sending, waits for the requests in flight, and returns every sample. */
  stop(): Promise<Sample[]>;
}

/** 503 with Retry-After is the one acceptable failure. */
function outcomeOf(probe: Probe, answer: Answer): Outcome {
  if (probe.succeeded(answer)) return 'success';
  if (answer.status === 503 && answer.retryAfter) return 'unavailable';
  return 'wrong';
}

export function startSteadyLoad(probes: Probe[], options: LoadOptions): SteadyLoad {
  const samples: Sample[] = [];
  const busy = new Set<Probe>();
  let next = 0;
  let stopping = false;

  function pick(): Probe {
    for (let tries = 0; tries < probes.length; tries++) {
      const probe = probes[next++ % probes.length]!;
      if (probe.retired?.()) continue;
      if (!probe.exclusive || !busy.has(probe)) return probe;
    }
    return probes.find((probe) => !probe.exclusive && !probe.retired?.())!;
  }

  async function once(probe: Probe) {
    busy.add(probe);
    const startedAt = Date.now();
    try {
      const res = await probe.send(AbortSignal.timeout(options.answerWithinMs));
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON (a page): kept as text.
      }
      const answer = { status: res.status, retryAfter: res.headers.get('retry-after'), body };
      probe.onAnswer?.(answer);
      const outcome = outcomeOf(probe, answer);
      const detail = outcome === 'wrong' ? `${res.status} ${text.slice(0, 300)}` : undefined;
      samples.push({ probe: probe.name, startedAt, answeredAt: Date.now(), status: res.status, outcome, ...(detail ? { detail } : {}) });
    } catch (error) {
      samples.push({ probe: probe.name, startedAt, answeredAt: Date.now(), status: 0, outcome: 'no-answer', detail: (error as Error).name === 'TimeoutError' ? `no answer within ${options.answerWithinMs} ms` : String(error) });
    } finally {
      busy.delete(probe);
    }
  }

  async function worker() {
    while (!stopping) {
      await once(pick());
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  }

  const workers = Array.from({ length: options.concurrency }, () => worker());
  return {
    samples,
    async stop() {
      stopping = true;
      await Promise.all(workers);
      return samples;
    },
  };
}

/** How many answers of each status (0: none) the samples hold. */
export function countByStatus(samples: Sample[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { status } of samples) counts[String(status)] = (counts[String(status)] ?? 0) + 1;
  return counts;
}

/** The first success of `probe` (a name, or a prefix such as 'refresh') sent at or after `since` (the time it was answered), if any. */
export function firstSuccess(samples: Sample[], probe: string, since: number): number | undefined {
  return samples.filter((sample) => sample.probe.startsWith(probe) && sample.outcome === 'success' && sample.startedAt >= since).reduce<number | undefined>((first, { answeredAt }) => (first === undefined || answeredAt < first ? answeredAt : first), undefined);
}

/** Resolves once every probe named (or prefix) has succeeded after `since`; rejects after timeoutMs. */
export async function untilEachSucceeded(load: SteadyLoad, probes: string[], since: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = probes.filter((probe) => firstSuccess(load.samples, probe, since) === undefined);
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`no success within ${timeoutMs} ms from: ${missing.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
