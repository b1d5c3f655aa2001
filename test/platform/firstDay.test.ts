import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sign } from '../../api/signature';
import { TESTBED_DIR } from '../../dev/fleet';
import { findTemporalCli, freePort } from '../../dev/temporal';
import { parseInventory } from '../../schema/inventory';
import { eventually } from '../support/eventually';

/**
 * An operator's first day, as docs/platform.md tells it: `npm start` (dev/platform.ts, run by tsx
 * as a child process with its own data directory, demo subnet, names and ports), then a site
 * provisioned through the signed API, cloned from the demo fleet's Git host, committed to and
 * pushed (the push deploys it, the page shows the commit), the Temporal CLI through the codec
 * server (a query, failure messages, a start without the codec refused), the Web UI on loopback
 * only, and Ctrl-C stopping everything it started. The docs' examples run here as written.
 */

jest.setTimeout(15 * 60_000);

const ROOT = path.resolve(__dirname, '../..');

// Beside the jest bed: its subnet + 50, its prefix + "p", its directory + "-platform".
const bedSubnet = process.env.QM_TESTBED_SUBNET ?? '10.77.0';
const [o1, o2, o3] = bedSubnet.split('.').map(Number) as [number, number, number];
const SUBNET = process.env.QM_TEST_DEMO_SUBNET ?? `${o1}.${o2}.${(o3 + 50) % 256}`;
const PREFIX = `${process.env.QM_TESTBED_PREFIX ?? 'qm'}p`;
const DATA = `${TESTBED_DIR}-platform`;

let platform: ChildProcess;
let output = '';
let env: NodeJS.ProcessEnv;
let ports: { temporal: number; ui: number; api: number; codec: number };
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-first-day-'));

/** The example after `<!-- example: NAME -->` in docs/platform.md, as written. */
function example(name: string): string {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'platform.md'), 'utf8');
  const m = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m) throw new Error(`docs/platform.md has no example ${name}`);
  return m[1]!;
}

/** Run a shell example as a newcomer would paste it: bash, in `cwd`, with the platform's settings. */
async function runExample(name: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', example(name)], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
  });
}

/** A signed request to the platform's billing API. */
async function api(method: string, urlPath: string, body?: unknown, key?: string) {
  const secret = fs.readFileSync(path.join(DATA, 'api.secret'), 'utf8').trim();
  const raw = body === undefined ? '' : JSON.stringify(body);
  const r = await fetch(`http://127.0.0.1:${ports.api}${urlPath}`, {
    method,
    body: raw || undefined,
    headers: {
      ...(raw ? { 'content-type': 'application/json' } : {}),
      ...(key ? { 'idempotency-key': key } : {}),
      ...sign(secret, { method, path: urlPath, body: raw }),
    },
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** Listening TCP sockets on a port: their local addresses. */
function listeners(port: number): string[] {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/)[3]!.replace(/:\d+$/, ''));
}

/**
 * Processes of this platform: a command line naming its data directory (the dev server, the
 * fleet's daemons) or an environment holding it (the platform itself, what it started).
 */
function processesOfData(): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (cmd.includes(DATA) || environ.includes(`QM_DATA_DIR=${DATA}`))
        found.push(`${pid} ${cmd.slice(0, 100)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const fleetEnv = () => ({
  ...process.env,
  QM_TESTBED_DIR: path.join(DATA, 'fleet'),
  QM_TESTBED_PREFIX: PREFIX,
  QM_TESTBED_SUBNET: SUBNET,
});

beforeAll(async () => {
  // a first start: what an earlier run left goes first (its fleet, if it died), all but the
  // fleet's image and database template, which only make its start faster
  execFileSync('bash', [path.join(ROOT, 'dev', 'fleet.sh'), 'down'], { env: fleetEnv(), stdio: 'ignore' });
  const keep = new Set(['images', 'mysql-template']);
  for (const entry of fs.existsSync(DATA) ? fs.readdirSync(DATA) : [])
    if (entry !== 'fleet') fs.rmSync(path.join(DATA, entry), { recursive: true, force: true });
  for (const entry of fs.existsSync(path.join(DATA, 'fleet')) ? fs.readdirSync(path.join(DATA, 'fleet')) : [])
    if (!keep.has(entry)) fs.rmSync(path.join(DATA, 'fleet', entry), { recursive: true, force: true });
  ports = {
    temporal: await freePort(),
    ui: await freePort(),
    api: await freePort(),
    codec: await freePort(),
  };
  env = {
    ...process.env,
    PATH: `${path.dirname(findTemporalCli())}${path.delimiter}${process.env.PATH ?? ''}`,
    QM_DATA_DIR: DATA,
    QM_DEMO_SUBNET: SUBNET,
    QM_DEMO_PREFIX: PREFIX,
    QM_TEMPORAL_PORT: String(ports.temporal),
    QM_UI_PORT: String(ports.ui),
    QM_API_PORT: String(ports.api),
    QM_CODEC_PORT: String(ports.codec),
    // a newcomer's git knows who they are
    GIT_AUTHOR_NAME: 'Newcomer',
    GIT_AUTHOR_EMAIL: 'newcomer@example.test',
    GIT_COMMITTER_NAME: 'Newcomer',
    GIT_COMMITTER_EMAIL: 'newcomer@example.test',
  };
  for (const k of [
    'QM_INVENTORY',
    'QM_CODEC_KEY',
    'QM_CODEC_TOKEN',
    'QM_API_SECRETS',
    'QM_UI_HOST',
    'QM_KEEP_FLEET',
  ])
    delete env[k];
  // its own process group, as `npm start` in a terminal: Ctrl-C is a SIGINT to the whole group
  platform = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['dev/platform.ts'], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  platform.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  platform.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await eventually(
    () => {
      if (platform.exitCode !== null) throw new Error(`npm start exited ${platform.exitCode}:\n${output}`);
      return output.includes('[platform] ready');
    },
    { what: 'npm start to be ready', timeoutMs: 8 * 60_000, intervalMs: 500 },
  );
});

afterAll(async () => {
  if (platform && platform.exitCode === null && platform.signalCode === null) {
    process.kill(-platform.pid!, 'SIGKILL');
    execFileSync('bash', [path.join(ROOT, 'dev', 'fleet.sh'), 'down'], { env: fleetEnv(), stdio: 'ignore' });
  }
  fs.rmSync(work, { recursive: true, force: true });
});

test('it says where everything is; secrets are 0600; the Web UI and the codec server listen on loopback only', () => {
  expect(output).toContain(`Web UI        http://127.0.0.1:${ports.ui}`);
  expect(output).toContain(`codec server  http://127.0.0.1:${ports.codec}/codec (token ${DATA}/codec.token)`);
  expect(output).toContain(`Git webhook   http://${SUBNET}.1:${ports.api}/hooks/git`);
  for (const f of ['codec.key', 'codec.token', 'api.secret', 'git-hook.secret', 'demo.env'])
    expect([f, fs.statSync(path.join(DATA, f)).mode & 0o777]).toEqual([f, 0o600]);
  expect(listeners(ports.ui)).toEqual(['127.0.0.1']);
  expect(listeners(ports.codec)).toEqual(['127.0.0.1']);
  expect(listeners(ports.temporal)).toEqual(['127.0.0.1']);
  // the API on loopback; the webhook also where the Git host reaches this machine, nowhere else
  expect(listeners(ports.api).sort()).toEqual([`${SUBNET}.1`, '127.0.0.1']);
  // the demo fleet's hosts share this machine's root filesystem: a patch roll's default patches nothing
  const hosts = parseInventory(
    JSON.parse(fs.readFileSync(path.join(DATA, 'fleet', 'inventory.json'), 'utf8')),
  );
  for (const h of hosts) expect([h.name, h.patchCommand?.[0]]).toEqual([h.name, 'echo']);
});

test('a site provisioned through the signed API, cloned, committed to and pushed: the push deploys it', async () => {
  const body = JSON.parse(example('first-day-provision')) as { site: { siteId: string } };
  const started = await api('POST', '/v1/sites', body, 'first-day');
  expect(started.status).toBe(202);
  const opPath = `/v1/operations/${encodeURIComponent(String(started.json.operationId))}`;
  const done = await eventually(
    async () => {
      const op = (await api('GET', opPath)).json;
      return op.state !== 'RUNNING' && op;
    },
    { what: 'the provisioning to end', timeoutMs: 5 * 60_000, intervalMs: 1000 },
  );
  expect(done).toMatchObject({ state: 'COMPLETED', result: { git: { hook: 'installed' } } });

  const push = await runExample('first-day-push');
  const commit = execFileSync('git', ['-C', path.join(work, 'demo1'), 'rev-parse', 'HEAD'], {
    encoding: 'utf8',
  }).trim();
  expect([push.code, push.out]).toEqual([
    0,
    expect.stringContaining(`deploying ${commit.slice(0, 12)} to demo1`),
  ]);
  expect(push.out).toContain('COMPLETED');
  expect(push.out).toContain(`site demo1 release ${commit} on `);
  expect(push.out).toContain('hello from demo1');
});

test('the temporal CLI through the codec server: a query, failure messages in clear, a start without it refused', async () => {
  const { out } = await runExample('first-day-codec');
  expect(out).toMatch(/QueryResult\s+\{"queue":.*"siteId":"demo1".*"state":"active"/);
  expect(out).not.toContain('Bad Request');
  // result in text: the kind of failure and where to read it; show --detailed: the message itself
  expect(out).toContain('Message: Encoded failure (InvalidInput): the message is encrypted');
  expect(out).toMatch(/failure\.encodedAttributes\.message: invalid provisionSite input: site\.siteId:/);
  expect(out).toContain("Message: refused: this workflow's input reached the worker unencrypted");
  // what Temporal stores, read without the codec: the CLI's input encrypted, the refused one plain
  const encodingOf = (workflowId: string) => {
    const history = JSON.parse(
      execFileSync(
        findTemporalCli(),
        [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '-o',
          'json',
          '--address',
          `127.0.0.1:${ports.temporal}`,
        ],
        { encoding: 'utf8' },
      ),
    ) as {
      events: {
        workflowExecutionStartedEventAttributes?: {
          input: { payloads: { metadata: { encoding: string } }[] };
        };
      }[];
    };
    const input = history.events[0]!.workflowExecutionStartedEventAttributes!.input.payloads[0]!;
    return Buffer.from(input.metadata.encoding, 'base64').toString();
  };
  expect(encodingOf('provision:demo2:typo')).toBe('binary/encrypted');
  expect(encodingOf('check:no-codec')).toBe('json/plain');
});

test('Ctrl-C stops everything it started, within a bound', async () => {
  const t0 = Date.now();
  const exited = new Promise<number | null>((resolve) => platform.once('exit', (code) => resolve(code)));
  process.kill(-platform.pid!, 'SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    exited,
    new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 3 * 60_000))),
  ]);
  clearTimeout(timer);
  console.log(`[first day] stopped ${Date.now() - t0} ms after SIGINT`);
  expect(code).toBe(0);
  expect(output).toContain('[platform] stopped');
  expect(processesOfData()).toEqual([]);
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(
    new RegExp(`^${PREFIX}-`, 'm'),
  );
  for (const port of Object.values(ports)) expect([port, listeners(port)]).toEqual([port, []]);
});
