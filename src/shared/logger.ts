import { pino, type Logger, type DestinationStream } from 'pino';

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
  'res.headers["set-cookie"]',
  'password',
  '*.password',
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

/** Query parameters whose values are credentials; their values are replaced in logged URLs. */
const SECRET_QUERY_PARAMETERS = /([?&](?:password|access_token|refresh_token|token|client_secret|code|device_code|user_code|key)=)[^&#]*/gi;

export function redactUrlQuery(url: string): string {
  return url.replace(SECRET_QUERY_PARAMETERS, '$1[Redacted]');
}

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'tessera' },
      redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

export type { Logger };
