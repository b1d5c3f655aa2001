import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openFleet } from '../activities/fleet';
import { AesGcmCodec, dataConverterFor } from '../client/codec';
import { gitHookConfig, loadEnv, temporalTls, WorkerEnv } from '../config';
import { PlatformMetrics } from './metrics';
import { startMetricsServer } from './metricsServer';
import { installTelemetry } from './telemetry';
import { createWorker } from './worker';

/**
 * The worker process: `npm run worker`, or `node dist/workers/main.js` in the image.
 * Configuration from the environment (config/, WorkerEnv). Logs are JSON lines on stdout.
 * SIGTERM/SIGINT: stop polling, let in-flight activities finish (up to QM_SHUTDOWN_GRACE_SECONDS),
 * then exit 0.
 */

/** The prebuilt bundle: QM_WORKFLOW_BUNDLE, else dist/workflow-bundle.js next to the compiled code. */
function workflowBundlePath(env: WorkerEnv): string | undefined {
  if (env.QM_WORKFLOW_BUNDLE) return env.QM_WORKFLOW_BUNDLE;
  const built = path.join(__dirname, '..', 'workflow-bundle.js');
  return fs.existsSync(built) ? built : undefined;
}

async function main() {
  const env = loadEnv(WorkerEnv);
  const metricsPort = env.QM_METRICS_PORT;
  const { logger, sdkMetricsUrl } = installTelemetry({
    logLevel: env.QM_LOG_LEVEL,
    sdkMetricsPort: metricsPort ? env.QM_SDK_METRICS_PORT : undefined,
  });
  const codec = env.QM_CODEC_KEY ? new AesGcmCodec(env.QM_CODEC_KEY) : undefined;
  if (!codec)
    logger.warn(
      'QM_CODEC_KEY is not set: workflow inputs and results (site specs, customer data) are stored ' +
        'in plain text in Temporal. Set it to the key the API and the CLI use.',
    );
  const fleet = openFleet({
    inventoryPath: env.QM_INVENTORY,
    privateKeyPath: env.QM_SSH_KEY,
    agent: env.SSH_AUTH_SOCK,
  });
  if (
    fleet.hosts.some((h) => h.roles.includes('git')) &&
    !(env.QM_GIT_HOOK_URL && env.QM_GIT_HOOK_SECRET_FILE)
  )
    logger.warn(
      'the inventory has a git host but QM_GIT_HOOK_URL / QM_GIT_HOOK_SECRET_FILE are not set: sites ' +
        'provisioned by this worker get their repository without the post-receive hook (pushes deploy nothing).',
    );
  const tls = temporalTls(env);
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS, tls });
  const clientConnection = await Connection.connect({ address: env.TEMPORAL_ADDRESS, tls });
  const client = new Client({
    connection: clientConnection,
    namespace: env.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(codec),
  });
  const bundle = workflowBundlePath(env);
  const worker = await createWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.QM_TASK_QUEUE,
    fleet,
    client,
    dataConverter: dataConverterFor(codec, { worker: true }),
    workflowBundle: bundle ? { codePath: bundle } : undefined,
    shutdownGraceTime: `${env.QM_SHUTDOWN_GRACE_SECONDS}s`,
    gitHook: gitHookConfig(env),
  });

  const metrics = metricsPort ? new PlatformMetrics({ client, fleet, logger }) : undefined;
  const server =
    metrics && metricsPort
      ? await startMetricsServer({
          host: env.QM_METRICS_HOST,
          port: metricsPort,
          registry: metrics.registry,
          sdkMetricsUrl,
          healthy: () => worker.getState() === 'RUNNING',
        })
      : undefined;
  metrics?.start(env.QM_METRICS_REFRESH_SECONDS);

  logger.info(`worker on task queue ${env.QM_TASK_QUEUE} at ${env.TEMPORAL_ADDRESS}`, {
    taskQueue: env.QM_TASK_QUEUE,
    namespace: env.TEMPORAL_NAMESPACE,
    temporal: env.TEMPORAL_ADDRESS,
    tls: tls ? (tls.clientCertPair ? 'mtls' : 'tls') : 'off',
    hosts: fleet.hosts.length,
    payloadKey: codec?.keyId,
    workflowBundle: bundle ?? 'bundled at start',
    metrics: server ? `${server.url}/metrics` : 'off',
  });
  try {
    await worker.run(); // SIGINT/SIGTERM: finishes in-flight activities, then returns
  } finally {
    await metrics?.stop();
    await server?.close();
    await fleet.close();
    await connection.close();
    await clientConnection.close();
  }
  logger.info('worker stopped');
}

main().catch((err) => {
  // before the JSON logger exists (bad configuration) or after the worker failed: say it plainly
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
