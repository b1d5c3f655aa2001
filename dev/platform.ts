import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import Fastify from 'fastify';
import { openFleet } from '../activities/fleet';
import { gitHookPlugin } from '../api/gitHook';
import { buildApi } from '../api/server';
import { codecFromEnv, dataConverterFor } from '../client/codec';
import { ApiSecrets, gitHookConfig, loadEnv, PlatformEnv } from '../config';
import { parseOrThrow } from '../schema/common';
import { createCodecServer, uiCodecEndpoint } from '../workers/codecServer';
import { createWorker } from '../workers/worker';
import { startDevServer } from './temporal';

/**
 * `npm start`: the whole platform on one machine, for a newcomer or a demo (docs/platform.md).
 * - an embedded Temporal dev server (SQLite under data/), its Web UI on 127.0.0.1 only
 *   (QM_UI_HOST to open it: it has no login and can start, signal and terminate workflows);
 * - a demo fleet of three hosts (the test bed under data/fleet, subnet QM_DEMO_SUBNET) when no
 *   inventory is given (QM_INVENTORY + QM_SSH_KEY point at a real fleet instead);
 * - the worker, refusing workflows whose input arrived unencrypted;
 * - the codec server on 127.0.0.1, so the Web UI and the temporal CLI show payloads in clear;
 * - the billing API on 127.0.0.1, and the Git webhook also on this machine's address on the demo
 *   fleet's bridge (.1 of its subnet: the one address its Git host reaches), so a push deploys.
 * Secrets not given in the environment are made once in data/ (mode 0600): codec.key,
 * codec.token, api.secret, git-hook.secret. data/demo.env has what the temporal CLI, git and curl
 * need (`. data/demo.env`). SIGINT (Ctrl-C) or SIGTERM stops everything it started and exits;
 * data/ keeps Temporal's history and the fleet's data for the next start. Every port and the
 * fleet's subnet and names can be moved (config/: PlatformEnv), so several can run at once.
 */

const ROOT = path.resolve(__dirname, '..');
/** How long the worker may take to stop after a signal before the rest is stopped anyway. */
const WORKER_STOP_BOUND_MS = 30_000;

const log = (line: string) => console.log(`[platform] ${line}`);

/** A secret kept in the data directory (mode 0600), made once: the demo's history stays readable across restarts. */
function localSecret(data: string, name: string, make: () => string): { value: string; file: string } {
  const file = path.join(data, name);
  try {
    fs.writeFileSync(file, `${make()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    fs.chmodSync(file, 0o600); // one made by hand or by an older start may be readable by others
  }
  return { value: fs.readFileSync(file, 'utf8').trim(), file };
}

/** The demo fleet's settings for dev/fleet.sh. */
function demoFleet(env: PlatformEnv, data: string) {
  const dir = path.join(data, 'fleet');
  const run = (verb: 'up' | 'down') =>
    // setsid: the fleet's daemons in a session of their own, out of reach of the terminal's Ctrl-C
    // (which goes to the whole foreground group): the platform decides when the fleet stops
    execFileSync('setsid', ['-w', 'bash', path.join(__dirname, 'fleet.sh'), verb], {
      env: {
        ...process.env,
        QM_TESTBED_DIR: dir,
        QM_TESTBED_PREFIX: env.QM_DEMO_PREFIX,
        QM_TESTBED_SUBNET: env.QM_DEMO_SUBNET,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  return {
    dir,
    inventory: path.join(dir, 'inventory.json'),
    key: path.join(dir, 'keys', 'id_ed25519'),
    knownHosts: path.join(dir, 'keys', 'known_hosts'),
    /** This machine on the fleet's bridge (dev/fleet.sh gives the root namespace .1). */
    bridgeAddress: `${env.QM_DEMO_SUBNET}.1`,
    up: () => run('up'),
    down: () => run('down'),
  };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function main() {
  const env = loadEnv(PlatformEnv);
  const data = path.resolve(env.QM_DATA_DIR ?? path.join(ROOT, 'data'));
  fs.mkdirSync(data, { recursive: true });
  // Our own signal handling (below), not the SDK's: it would stop the worker and nothing else.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

  // Stopped by a signal at any point: during start-up between two steps, once up by the worker's end.
  let stopping: string | undefined;
  let stoppingAt = 0;
  let hurry: () => void = () => {};
  const hurried = new Promise<void>((resolve) => (hurry = resolve));
  let onStop: () => void = () => {};
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.on(signal, () => {
      if (stopping) {
        // a Ctrl-C reaches this process twice, from the terminal and relayed by tsx: only a
        // second one a moment later is the operator's
        if (Date.now() - stoppingAt < 2000) return;
        log(`${signal} again: not waiting for the worker`);
        hurry();
        return;
      }
      stopping = signal;
      stoppingAt = Date.now();
      log(`${signal}: stopping (again to hurry)`);
      onStop();
    });
  const startedSteps: { name: string; stop: () => unknown }[] = [];
  const stopRequested = () => {
    if (stopping) throw new Error(`stopped by ${stopping} during start-up`);
  };
  const started = (name: string, stop: () => unknown) => {
    startedSteps.push({ name, stop });
    stopRequested();
  };

  try {
    const codec = codecFromEnv({
      QM_CODEC_KEY:
        env.QM_CODEC_KEY ?? localSecret(data, 'codec.key', () => randomBytes(32).toString('base64')).value,
    })!;
    const codecToken = env.QM_CODEC_TOKEN
      ? { value: env.QM_CODEC_TOKEN, file: undefined }
      : localSecret(data, 'codec.token', () => randomBytes(24).toString('hex'));
    const apiSecret = env.QM_API_SECRETS
      ? { value: env.QM_API_SECRETS, file: undefined }
      : localSecret(data, 'api.secret', () => randomBytes(32).toString('hex'));
    const secrets = parseOrThrow(ApiSecrets, apiSecret.value, 'QM_API_SECRETS');
    const useDemo = !env.QM_INVENTORY;
    const fleetOf = useDemo ? demoFleet(env, data) : undefined;
    // The hook's secret: the real fleet's (QM_GIT_HOOK_SECRET_FILE), else one made for the demo fleet.
    const hook = useDemo
      ? {
          secret: localSecret(data, 'git-hook.secret', () => randomBytes(32).toString('hex')).value,
          url: undefined as string | undefined,
        }
      : (gitHookConfig(env) ?? undefined);

    const uiOrigins = [`http://localhost:${env.QM_UI_PORT}`, `http://127.0.0.1:${env.QM_UI_PORT}`];
    if (!['0.0.0.0', '::', '127.0.0.1', 'localhost'].includes(env.QM_UI_HOST))
      uiOrigins.push(`http://${env.QM_UI_HOST}:${env.QM_UI_PORT}`);
    const codecServer = createCodecServer({ codec, token: codecToken.value, uiOrigins });
    const codecUrl = await codecServer.listen({ host: '127.0.0.1', port: env.QM_CODEC_PORT });
    started('codec server', () => codecServer.close());

    if (fleetOf) {
      log(
        `no QM_INVENTORY: bringing up the demo fleet (3 hosts, ${env.QM_DEMO_SUBNET}.11-13) under ${fleetOf.dir}`,
      );
      // registered first: a fleet that came up halfway is taken down too
      started('demo fleet', () => {
        if (env.QM_KEEP_FLEET)
          log(`QM_KEEP_FLEET=1: the demo fleet stays up (bash dev/fleet.sh down to stop it)`);
        else fleetOf.down();
      });
      fleetOf.up();
      stopRequested();
    }
    const inventoryPath = fleetOf?.inventory ?? env.QM_INVENTORY!;
    const privateKeyPath = fleetOf?.key ?? env.QM_SSH_KEY;

    if (!['127.0.0.1', 'localhost', '::1'].includes(env.QM_UI_HOST))
      log(
        `QM_UI_HOST=${env.QM_UI_HOST}: the Web UI (no login; Start, Signal and Terminate enabled) ` +
          'is reachable from other machines',
      );
    const server = await startDevServer({
      dbFile: path.join(data, 'temporal.db'),
      port: env.QM_TEMPORAL_PORT,
      uiPort: env.QM_UI_PORT,
      uiIp: env.QM_UI_HOST,
      ownProcessGroup: true,
      uiCodecEndpoint: uiCodecEndpoint(codecUrl, codecToken.value),
      logFile: path.join(data, 'temporal.log'),
    });
    started('Temporal dev server', () => server.stop());

    const fleet = openFleet({ inventoryPath, privateKeyPath, agent: env.SSH_AUTH_SOCK });
    started('fleet connections', () => fleet.close());
    const clientConnection = await Connection.connect({ address: server.address });
    started('client connection', () => clientConnection.close());
    const client = new Client({ connection: clientConnection, dataConverter: dataConverterFor(codec) });
    const taskQueue = env.QM_TASK_QUEUE;

    const api = buildApi({
      client,
      taskQueue,
      secrets,
      gitHookSecrets: hook ? [hook.secret] : undefined,
      logger: { level: 'warn' },
    });
    const apiUrl = await api.listen({ host: env.QM_API_HOST, port: env.QM_API_PORT });
    started('API', () => api.close());
    const apiPort = (api.server.address() as { port: number }).port;

    // The demo fleet's Git host reaches this machine only on the bridge: the webhook (alone, not
    // the billing API) listens there too, on the API's port; nowhere else (an API asked to listen
    // on every address serves it there already).
    if (fleetOf && hook && !['0.0.0.0', '::'].includes(env.QM_API_HOST)) {
      const receiver = Fastify({ logger: { level: 'warn' } });
      await receiver.register(gitHookPlugin, { client, taskQueue, secrets: [hook.secret] });
      await receiver.listen({ host: fleetOf.bridgeAddress, port: apiPort });
      started('Git webhook', () => receiver.close());
    }
    if (fleetOf && hook) hook.url = `http://${fleetOf.bridgeAddress}:${apiPort}/hooks/git`;

    const connection = await NativeConnection.connect({ address: server.address });
    started('worker connection', () => connection.close());
    const worker = await createWorker({
      connection,
      taskQueue,
      fleet,
      client,
      dataConverter: dataConverterFor(codec, { worker: true }),
      gitHook: hook?.url ? { url: hook.url, secret: hook.secret } : undefined,
      shutdownGraceTime: '10s',
    });
    const running = worker.run(); // returns once shut down: in-flight activities get 10 s, then are cancelled
    onStop = () => {
      try {
        worker.shutdown();
      } catch {
        // already stopping
      }
      setTimeout(hurry, WORKER_STOP_BOUND_MS).unref();
    };
    if (stopping) onStop();

    const envFile = path.join(data, 'demo.env');
    const gitHost = fleet.hosts.find((h) => h.roles.includes('git'));
    const proxyHost = fleet.hosts.find((h) => h.roles.includes('proxy'));
    const lines = [
      '# Written by npm start (dev/platform.ts) at each start: `. data/demo.env` in a shell gives the',
      '# temporal CLI, git and curl what they need to reach this platform (docs/platform.md).',
      `export TEMPORAL_ADDRESS=${server.address}`,
      `export TEMPORAL_CODEC_ENDPOINT=${codecUrl}/codec`,
      codecToken.file
        ? `export QM_CODEC_TOKEN="$(cat ${q(codecToken.file)})"`
        : '# QM_CODEC_TOKEN: the one npm start was given',
      'export TEMPORAL_CODEC_AUTH="Bearer $QM_CODEC_TOKEN"',
      `export QM_API_URL=${apiUrl}`,
      apiSecret.file
        ? `export QM_API_SECRET_FILE=${q(apiSecret.file)}`
        : '# QM_API_SECRETS: as npm start was given',
      ...(fleetOf && gitHost && proxyHost
        ? [
            `export QM_DEMO_GIT=root@${gitHost.address}`,
            `export QM_DEMO_GIT_SSH=${q(
              `ssh -i ${fleetOf.key} -o IdentitiesOnly=yes -o UserKnownHostsFile=${fleetOf.knownHosts}`,
            )}`,
            `export QM_DEMO_PROXY=${proxyHost.address}`,
          ]
        : []),
    ];
    fs.writeFileSync(envFile, lines.join('\n') + '\n', { mode: 0o600 });
    fs.chmodSync(envFile, 0o600);

    const ui = server.uiUrl ?? '(headless)';
    log('ready');
    console.log(
      [
        `  Web UI        ${ui} (listening on ${env.QM_UI_HOST})`,
        `  Temporal      ${server.address}, task queue ${taskQueue}; payloads encrypted (key ${codec.keyId})`,
        `  billing API   ${apiUrl} (OpenAPI at ${apiUrl}/openapi.json; signing secret ${apiSecret.file ?? 'from QM_API_SECRETS'})`,
        hook?.url
          ? `  Git webhook   ${hook.url} (what the Git host's hook calls; secret ${
              fleetOf ? path.join(data, 'git-hook.secret') : env.QM_GIT_HOOK_SECRET_FILE
            })`
          : `  Git webhook   not served: set QM_GIT_HOOK_URL and QM_GIT_HOOK_SECRET_FILE`,
        `  codec server  ${codecUrl}/codec (token ${codecToken.file ?? 'from QM_CODEC_TOKEN'})`,
        `  for the temporal CLI, git and curl:  . ${envFile}`,
        `    e.g. temporal workflow show --workflow-id <id> --detailed   (payloads and failures in clear)`,
        ...(fleetOf && proxyHost
          ? [
              `  sites         http://${proxyHost.address}/ with the site's domain as Host (curl -H 'Host: …')`,
            ]
          : []),
        `  Ctrl-C stops everything${fleetOf && env.QM_KEEP_FLEET ? ' but the demo fleet (QM_KEEP_FLEET=1)' : ''}`,
      ].join('\n'),
    );

    const outcome = await Promise.race([running.then(() => 'stopped' as const), hurried]);
    if (outcome !== 'stopped') log('the worker did not stop in time: stopping the rest anyway');
  } finally {
    for (const step of startedSteps.reverse()) {
      try {
        await step.stop();
      } catch (err) {
        console.error(
          `[platform] stopping the ${step.name} failed: ${err instanceof Error ? err.message : err}`,
        );
      }
    }
    log('stopped');
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
