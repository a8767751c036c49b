import type { Logger, LogFn } from 'pino';
import { storeUnavailableCause } from './errors.ts';

// Failures that repeat (every request while Redis is away) are logged once per interval with a
// count: the first one whole, with its stack, then one line per interval saying how many more
// there were, until an interval passes without one. Used as pino's logMethod hook (logger.ts).

export interface RepeatedFailureOptions {
  /** How long the repeats of one cause are counted before a line says how many (default 10 s). */
  intervalMs?: number;
  /** Milliseconds since the epoch (tests move it). */
  clock?: () => number;
  /** Most causes counted at once (default 1000); past it, the oldest is reported and forgotten. */
  maxCauses?: number;
}

export const DEFAULT_REPEAT_INTERVAL_MS = 10_000;

/** pino's level number for warn: failures at this level and above are counted. */
const WARN = 40;

interface Counted {
  /** The log line's message, for the summary. */
  msg: string;
  cause: string;
  method: LogFn;
  since: number;
  repeats: number;
  timer: NodeJS.Timeout;
}

/** What a repeat is recognised by: a store outage by its store, anything else by its error's name and message. */
function causeOf(err: unknown): string {
  const outage = storeUnavailableCause(err);
  if (outage) return `${outage.store} unavailable`;
  const { name, message } = err as { name?: unknown; message?: unknown };
  return `${typeof name === 'string' ? name : 'Error'}: ${String(message ?? err).split('\n', 1)[0]!.slice(0, 200)}`;
}

export interface RepeatedFailureFilter {
  /** pino's hooks.logMethod. */
  logMethod(this: Logger, args: unknown[], method: LogFn, level: number): void;
  /** The logger the summaries are written to (the root: no request's bindings). */
  attach(logger: Logger): void;
}

export function createRepeatedFailureFilter(options: RepeatedFailureOptions = {}): RepeatedFailureFilter {
  const intervalMs = options.intervalMs ?? DEFAULT_REPEAT_INTERVAL_MS;
  const clock = options.clock ?? Date.now;
  const maxCauses = options.maxCauses ?? 1000;
  const counted = new Map<string, Counted>();
  let root: Logger | undefined;

  /** Writes how many repeats there were since the last line, if any; answers whether it wrote. */
  function report(entry: Counted): boolean {
    if (entry.repeats === 0 || !root) return false;
    const seconds = Math.round((clock() - entry.since) / 1000);
    entry.method.apply(root, [{ cause: entry.cause, repeats: entry.repeats, seconds }, `${entry.repeats} more like this in ${seconds} s: ${entry.msg}`] as never);
    entry.since = clock();
    entry.repeats = 0;
    return true;
  }

  function arm(key: string, entry: Counted): NodeJS.Timeout {
    const timer = setTimeout(() => {
      // An interval with repeats is reported and counting goes on; a quiet one ends it.
      if (report(entry)) entry.timer = arm(key, entry);
      else counted.delete(key);
    }, intervalMs);
    timer.unref();
    return timer;
  }

  return {
    attach(logger) {
      root = logger;
    },

    logMethod(args, method, level) {
      const [first, second] = args;
      const err = level >= WARN && typeof first === 'object' && first !== null ? (first as { err?: unknown }).err : undefined;
      if (err === undefined) {
        method.apply(this, args as never);
        return;
      }
      const msg = typeof second === 'string' ? second : '';
      const cause = causeOf(err);
      const key = `${level} ${msg} ${cause}`;
      const entry = counted.get(key);
      if (entry) {
        entry.repeats += 1;
        // The timer reports each interval; a clock moved by a test is reported at the next repeat.
        if (clock() - entry.since >= intervalMs) report(entry);
        return;
      }
      if (counted.size >= maxCauses) {
        const [oldestKey, oldest] = counted.entries().next().value!;
        report(oldest);
        clearTimeout(oldest.timer);
        counted.delete(oldestKey);
      }
      method.apply(this, args as never);
      const fresh: Counted = { msg, cause, method, since: clock(), repeats: 0, timer: undefined as unknown as NodeJS.Timeout };
      fresh.timer = arm(key, fresh);
      counted.set(key, fresh);
    },
  };
}
