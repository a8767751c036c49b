import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createLogger } from '../../src/shared/logger.ts';
import type { TokenAnswerEvent } from '../../src/routes/oauth/token-endpoint.ts';
import { startTessera, type RunningTessera } from '../../src/server.ts';
import { ledgerLog, recordConfigSecrets, recordCoreSecrets } from './secret-ledger.ts';
import { RUN_SETTINGS } from './services.ts';

/**
 * Log lines a test can search (for "no secret in a log line"), instead of printing them; also
 * written to the secret ledger when it is on (secret-ledger.ts).
 */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  private readonly ledger = ledgerLog('tessera');
  override _write(chunk: Buffer, _encoding: string, callback: () => void) {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    this.ledger?.(chunk);
    callback();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestTessera extends RunningTessera {
  config: Config;
  logs: LogCapture;
  /** Who answered each token request, by request id (token-requests.ts takes them). */
  tokenAnswers: Map<string, TokenAnswerEvent>;
}

/**
 * Starts a real Tessera in this process on a free port, configured like production apart from
 * what `env` says. Light argon2 parameters keep tests quick.
 */
export async function startTestTessera(env: Record<string, string>, overrides: Record<string, unknown> = {}, options: { clock?: () => number; logLevel?: string; issuerCheckTimeoutMs?: number } = {}): Promise<TestTessera> {
  const fullEnv = { PORT: '0', HOST: '127.0.0.1', TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1', TESSERA_ADMIN_PASSWORD: 'initial-admin-password', ...RUN_SETTINGS, ...env };
  recordConfigSecrets(fullEnv);
  const config = loadConfig({ overrides, env: fullEnv });
  const logs = new LogCapture();
  const { logLevel = 'info', ...startOptions } = options;
  const logger = createLogger({ level: logLevel, destination: logs });
  const tokenAnswers = new Map<string, TokenAnswerEvent>();
  const running = await startTessera(config, logger, { ...startOptions, onTokenAnswer: (answer) => tokenAnswers.set(answer.requestId, answer) });
  recordCoreSecrets(running.core);
  return { ...running, config, logs, tokenAnswers };
}
