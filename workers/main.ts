import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openFleet } from '../activities/fleet';
import { loadWorkerEnv } from './config';
import { createWorker } from './worker';

/** The worker process: `npm run worker` (configuration from the environment, see workers/config.ts). */
async function main() {
  const env = loadWorkerEnv();
  const fleet = openFleet({
    inventoryPath: env.QM_INVENTORY,
    privateKeyPath: env.QM_SSH_KEY,
    agent: env.SSH_AUTH_SOCK,
  });
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS });
  const clientConnection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  const client = new Client({ connection: clientConnection, namespace: env.TEMPORAL_NAMESPACE });
  const worker = await createWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.QM_TASK_QUEUE,
    fleet,
    client,
  });
  console.log(
    `worker on task queue ${env.QM_TASK_QUEUE} at ${env.TEMPORAL_ADDRESS}, ${fleet.hosts.length} hosts`,
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
