import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { EXIT } from './cli/exit-codes.ts';
import { loadConfigOrReport, redactConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { startMetricsListener } from './metrics/metrics-listener.ts';
import { createLogger } from './shared/logger.ts';
import { startTessera, type RunningTessera } from './server.ts';
import { DRAIN_MESSAGE, superviseWorkers, workerCount, workersRefusal } from './workers.ts';

/**
 * The composition root: configuration, then the service, then signal handling. With
 * TESSERA_WORKERS above 1 this process is the supervisor (workers.ts) and each worker it forks
 * runs this file again as a server.
 */
async function main(): Promise<void> {
  const config = loadConfigOrReport();
  if (!config) process.exit(EXIT.config);
  const baseLogger = createLogger({ level: config.log.level });

  if (cluster.isPrimary) {
    const workers = workerCount(config);
    const refusal = workersRefusal(config, workers);
    if (refusal) {
      baseLogger.fatal({ workers: config.http.workers }, refusal);
      console.error(`tessera: ${refusal}`);
      process.exit(EXIT.config);
    }
    if (workers > 1) {
      baseLogger.debug({ config: redactConfig(config) }, 'configuration');
      const supervisorLogger = baseLogger.child({ role: 'supervisor' });
      if (config.metrics.port !== null) {
        try {
          const listener = await serveWorkersMetrics(config, supervisorLogger);
          supervisorLogger.info({ metrics: `${listener.url}/metrics` }, "serving the workers' metrics, added up");
        } catch (error) {
          supervisorLogger.fatal({ reason: (error as Error).message }, 'Tessera could not start');
          console.error(`tessera: could not start: ${(error as Error).message}`);
          process.exit(1);
        }
      }
      superviseWorkers(config, supervisorLogger, workers);
      return;
    }
  }
  const logger = cluster.isWorker ? baseLogger.child({ worker: cluster.worker!.id }) : baseLogger;
  if (cluster.isPrimary) logger.debug({ config: redactConfig(config) }, 'configuration');

  let running: RunningTessera | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Told before it serves anything (a worker asked to drain while starting): nothing to drain.
    if (!running) process.exit(0);
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A worker drains when its supervisor says so (a Ctrl-C also reaches it directly, as SIGINT).
  if (cluster.isWorker) process.on('message', (message) => message === DRAIN_MESSAGE && shutdown('supervisor'));

  try {
    running = await startTessera(config, logger);
  } catch (error) {
    logger.fatal({ reason: (error as Error).message }, 'Tessera could not start');
    console.error(`tessera: could not start: ${(error as Error).message}`);
    process.exit(1);
  }

  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/** The supervisor's metrics: at each scrape, every worker's registry (server.ts), added up by prom-client. */
function serveWorkersMetrics(config: Config, logger: Logger) {
  const aggregator = new AggregatorRegistry();
  const read = async () => ({ text: await aggregator.clusterMetrics(), contentType: aggregator.contentType });
  return startMetricsListener(read, config.metrics.host, config.metrics.port!, (error) => logger.error({ err: error }, "could not read the workers' metrics"));
}

await main();
