import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openFleet } from '../activities/fleet';
import { codecFromEnv, dataConverterFor } from './codec';
import { loadWorkerEnv } from './config';
import { createWorker } from './worker';

/** The worker process: `npm run worker` (configuration from the environment, see workers/config.ts). */
async function main() {
  const env = loadWorkerEnv();
  const codec = codecFromEnv();
  if (!codec)
    console.warn(
      'WARNING: QM_CODEC_KEY is not set: workflow inputs and results (site specs, customer data) are stored ' +
        'in plain text in Temporal. Set it to the key the API and the CLI use.',
    );
  const fleet = openFleet({
    inventoryPath: env.QM_INVENTORY,
    privateKeyPath: env.QM_SSH_KEY,
    agent: env.SSH_AUTH_SOCK,
  });
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const clientConnection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({
    connection: clientConnection,
    namespace: env.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(codec),
  });
  const worker = await createWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.QM_TASK_QUEUE,
    fleet,
    client,
    dataConverter: dataConverterFor(codec),
  });
  console.log(
    `worker on task queue ${env.QM_TASK_QUEUE} at ${env.TEMPORAL_ADDRESS}, ${fleet.hosts.length} hosts` +
      (codec ? `, payloads encrypted (key ${codec.keyId})` : ''),
  );
  try {
    await worker.run(); // SIGINT/SIGTERM: finishes in-flight activities, then returns
  } finally {
    await fleet.close();
    await connection.close();
    await clientConnection.close();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
