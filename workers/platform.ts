import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openFleet } from '../activities/fleet';
import { startDevServer } from './devServer';
import { createWorker } from './worker';

/**
 * `npm start`: the whole platform on one machine, for a newcomer or a demo.
 * - an embedded Temporal dev server (SQLite under data/, Web UI on :8233, gRPC on :7233);
 * - a demo fleet of three hosts (the test bed under data/fleet, its own subnet 10.77.100.0/24)
 *   when no inventory is given (QM_INVENTORY + QM_SSH_KEY point at a real fleet instead);
 * - the worker.
 * Ctrl-C stops everything; data/ keeps Temporal's history and the fleet's data for the next start.
 */
const ROOT = path.resolve(__dirname, '..');
const DATA = path.resolve(process.env.QM_DATA_DIR ?? path.join(ROOT, 'data'));

function demoFleetEnv() {
  return {
    ...process.env,
    QM_TESTBED_DIR: path.join(DATA, 'fleet'),
    QM_TESTBED_PREFIX: 'qmdemo',
    QM_TESTBED_SUBNET: process.env.QM_DEMO_SUBNET ?? '10.77.100',
  };
}

function demoFleet(verb: 'up' | 'down') {
  execFileSync('bash', [path.join(ROOT, 'test/testbed/testbed.sh'), verb], {
    env: demoFleetEnv(),
    stdio: 'inherit',
  });
}

async function main() {
  fs.mkdirSync(DATA, { recursive: true });
  const useDemo = !process.env.QM_INVENTORY;
  if (useDemo) {
    console.log('[platform] no QM_INVENTORY: bringing up the demo fleet (3 hosts) under data/fleet');
    demoFleet('up');
  }
  const inventoryPath = process.env.QM_INVENTORY ?? path.join(DATA, 'fleet', 'inventory.json');
  const privateKeyPath = useDemo ? path.join(DATA, 'fleet', 'keys', 'id_ed25519') : process.env.QM_SSH_KEY;

  const server = await startDevServer({
    dbFile: path.join(DATA, 'temporal.db'),
    port: Number(process.env.QM_TEMPORAL_PORT ?? 7233),
    uiPort: Number(process.env.QM_UI_PORT ?? 8233),
    logFile: path.join(DATA, 'temporal.log'),
  });
  console.log(`[platform] Temporal at ${server.address}, Web UI at ${server.uiUrl}`);

  const fleet = openFleet({ inventoryPath, privateKeyPath, agent: process.env.SSH_AUTH_SOCK });
  const connection = await NativeConnection.connect({ address: server.address });
  const taskQueue = process.env.QM_TASK_QUEUE ?? 'quartermaster';
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection });
  const worker = await createWorker({ connection, taskQueue, fleet, client });
  console.log(
    `[platform] worker on task queue '${taskQueue}' with ${fleet.hosts.length} hosts; Ctrl-C to stop`,
  );

  try {
    await worker.run(); // returns after SIGINT/SIGTERM, once in-flight activities are done
  } finally {
    await fleet.close();
    await connection.close();
    await clientConnection.close();
    await server.stop();
    if (useDemo && process.env.QM_KEEP_FLEET !== '1') demoFleet('down');
    console.log('[platform] stopped');
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
