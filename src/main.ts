import { EXIT } from './cli/exit-codes.ts';
import { loadConfigOrReport, redactConfig } from './config/load.ts';
import { createLogger } from './shared/logger.ts';
import { startTessera } from './server.ts';

/** The composition root: configuration, then the service, then signal handling. */
async function main(): Promise<void> {
  const config = loadConfigOrReport();
  if (!config) process.exit(EXIT.config);
  const logger = createLogger({ level: config.log.level });
  logger.debug({ config: redactConfig(config) }, 'configuration');

  let running;
  try {
    running = await startTessera(config, logger);
  } catch (error) {
    logger.fatal({ reason: (error as Error).message }, 'Tessera could not start');
    console.error(`tessera: could not start: ${(error as Error).message}`);
    process.exit(1);
  }

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

await main();
