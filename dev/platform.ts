import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openFleet } from '../activities/fleet';
import { ApiSecrets } from '../config';
import { parseOrThrow } from '../schema/common';
import { buildApi } from '../api/server';
import { codecFromEnv, dataConverterFor } from '../client/codec';
import { createCodecServer, uiCodecEndpoint } from '../workers/codecServer';
import { startDevServer } from './temporal';
import { createWorker } from '../workers/worker';
import { ensureFleetCheckSchedule } from '../client/schedules';
import type { checkFleet } from '../workflows';

/**
 * `npm start`: the whole platform on one machine, for a newcomer or a demo.
 * - an embedded Temporal dev server (SQLite under data/, Web UI on :8233, gRPC on :7233);
 * - a demo fleet of three hosts (the test bed under data/fleet, its own subnet 10.77.100.0/24)
 *   when no inventory is given (QM_INVENTORY + QM_SSH_KEY point at a real fleet instead);
 * - the worker, with payloads encrypted (QM_CODEC_KEY, else a key made once in data/codec.key);
 * - the codec server on 127.0.0.1:8481, so the Web UI shows payloads in clear;
 * - the billing API on 127.0.0.1:8480 (QM_API_SECRETS, else a secret made once in data/api.secret);
 * - once the worker runs, a fleet check with repair (checkFleet {repair: true}: after a restart the
 *   proxy's nginx is not running and the app hosts' sshfs mounts are gone, and every site is put
 *   back as its record says), and the fleet check's Schedule (every 5 minutes, the same).
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
  execFileSync('bash', [path.join(__dirname, 'fleet.sh'), verb], {
    env: demoFleetEnv(),
    stdio: 'inherit',
  });
}

/** A secret kept in data/ (mode 0600), made once: the demo's history stays readable across restarts. */
function localSecret(name: string, make: () => string): string {
  const file = path.join(DATA, name);
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${make()}\n`, { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

async function main() {
  fs.mkdirSync(DATA, { recursive: true });
  const codec = codecFromEnv({
    QM_CODEC_KEY:
      process.env.QM_CODEC_KEY ?? localSecret('codec.key', () => randomBytes(32).toString('base64')),
  })!;
  const secrets = parseOrThrow(
    ApiSecrets,
    process.env.QM_API_SECRETS ?? localSecret('api.secret', () => randomBytes(32).toString('hex')),
    'QM_API_SECRETS',
  );
  const uiPort = Number(process.env.QM_UI_PORT ?? 8233);
  const codecToken = process.env.QM_CODEC_TOKEN ?? randomBytes(24).toString('hex');
  const codecServer = createCodecServer({
    codec,
    token: codecToken,
    uiOrigins: [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`],
  });
  const codecUrl = await codecServer.listen({
    host: '127.0.0.1',
    port: Number(process.env.QM_CODEC_PORT ?? 8481),
  });

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
    uiPort,
    uiCodecEndpoint: uiCodecEndpoint(codecUrl, codecToken),
    logFile: path.join(DATA, 'temporal.log'),
  });
  console.log(`[platform] Temporal at ${server.address}, Web UI at ${server.uiUrl}`);

  const fleet = openFleet({ inventoryPath, privateKeyPath, agent: process.env.SSH_AUTH_SOCK });
  const connection = await NativeConnection.connect({ address: server.address });
  const taskQueue = process.env.QM_TASK_QUEUE ?? 'quartermaster';
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection, dataConverter: dataConverterFor(codec) });
  const worker = await createWorker({
    connection,
    taskQueue,
    fleet,
    client,
    dataConverter: dataConverterFor(codec),
  });
  console.log(
    `[platform] worker on task queue '${taskQueue}' with ${fleet.hosts.length} hosts, payloads encrypted ` +
      `(key ${codec.keyId}); codec server at ${codecUrl}/codec for the Web UI`,
  );
  const api = buildApi({ client, taskQueue, secrets, logger: { level: 'warn' } });
  const apiUrl = await api.listen({
    host: process.env.QM_API_HOST ?? '127.0.0.1',
    port: Number(process.env.QM_API_PORT ?? 8480),
  });
  console.log(
    `[platform] billing API at ${apiUrl} (OpenAPI at ${apiUrl}/openapi.json; signing secret ` +
      `${process.env.QM_API_SECRETS ? 'from QM_API_SECRETS' : `in ${path.join(DATA, 'api.secret')}`}); Ctrl-C to stop`,
  );

  try {
    const running = worker.run(); // returns after SIGINT/SIGTERM, once in-flight activities are done
    void convergeAtStart(client, taskQueue);
    await running;
  } finally {
    await api.close();
    await codecServer.close();
    await fleet.close();
    await connection.close();
    await clientConnection.close();
    await server.stop();
    if (useDemo && process.env.QM_KEEP_FLEET !== '1') demoFleet('down');
    console.log('[platform] stopped');
  }
}

/**
 * The platform repairs itself at start: one fleet check with repair now (what a restart left out
 * of line: nginx not running, shared files not mounted), then every 5 minutes by its Schedule.
 */
async function convergeAtStart(client: Client, taskQueue: string): Promise<void> {
  try {
    const schedule = await ensureFleetCheckSchedule(client, taskQueue);
    const result = await client.workflow.execute<typeof checkFleet>('checkFleet', {
      taskQueue,
      workflowId: `fleet-check-at-start-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      args: [{ repair: true }],
    });
    const started = result.repairs.filter((r) => r.started);
    console.log(
      `[platform] fleet check at start: ${result.healthy.length} host(s) healthy` +
        (result.failed.length ? `, not answering: ${result.failed.map((f) => f.host).join(', ')}` : '') +
        `; ${result.sitesChecked} site(s) checked, ${result.sites.length} out of line` +
        (started.length ? `, repairs started: ${started.map((r) => r.workflowId).join(', ')}` : '') +
        `; schedule ${schedule.scheduleId} ${schedule.action} (every 5 minutes)`,
    );
  } catch (err) {
    console.error(
      `[platform] fleet check at start failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
