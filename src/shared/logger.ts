import { pino, type Logger, type DestinationStream } from 'pino';
import { createRepeatedFailureFilter, type RepeatedFailureOptions } from './repeated-failures.ts';

/**
 * Paths pino censors wherever they appear in a log object. Request logs never carry bodies, but
 * headers, query strings and error objects can: credentials are removed from all of them.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-session"]',
  'req.headers["x-api-key"]',
  'req.headers["x-csrf-token"]',
  // A DPoP proof is good once, but until then for anyone holding it with its token.
  'req.headers.dpop',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'otp',
  '*.otp',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'client_secret',
  '*.client_secret',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'databaseUrl',
  'redisUrl',
];

/** A parameter name longer than this may itself be a pasted credential: it is not logged either. */
const MAX_LOGGED_NAME = 32;

/**
 * A request URL as it may be logged: the path and the query's parameter names, never a value.
 * Names are decoded, so no encoding of `password` or `access_token` slips a value through.
 */
export function loggableUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const names = [...new URLSearchParams(url.slice(query + 1)).keys()].map((name) => (name.length > MAX_LOGGED_NAME ? '[Redacted]' : name));
  return names.length ? `${url.slice(0, query)}?${names.join('&')}` : url.slice(0, query);
}

/**
 * The JSON logger. A failure logged with its error (`{ err }`) that repeats, the same message and
 * cause again and again (every request during an outage), is written whole once, then as one line
 * per interval with a count (repeated-failures.ts).
 */
export function createLogger(options: { level: string; destination?: DestinationStream; repeats?: RepeatedFailureOptions }): Logger {
  const repeats = createRepeatedFailureFilter(options.repeats);
  const logger = pino(
    {
      level: options.level,
      base: { service: 'tessera', pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { logMethod: repeats.logMethod },
    },
    options.destination,
  );
  repeats.attach(logger);
  return logger;
}

export type { Logger };
