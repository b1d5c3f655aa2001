import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { Inventory } from '../../schema/inventory';
import { ApiEnv, CodecServerEnv, SetupEnv, WorkerEnv } from '../../config';

/**
 * docker-compose.yml, checked without pulling or building anything (no registry here): Debian's
 * docker-compose 1.29 resolves it with the example env file, then the resolved services are held
 * to the rules of a production stack.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const COMPOSE = path.join(ROOT, 'docker-compose.yml');
const EXAMPLE = path.join(ROOT, 'deploy', 'stack.env.example');

interface Service {
  image?: string;
  build?: unknown;
  restart?: string;
  labels?: Record<string, string>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  secrets?: (string | { source: string })[];
  volumes?: string[];
  ports?: string[];
  command?: string[];
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
}

/** docker-compose with nothing of the test's environment (the env file is the only input). */
function compose(envFile: string) {
  return spawnSync('docker-compose', ['--env-file', envFile, '-f', COMPOSE, 'config'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
}

let resolved: Compose;
beforeAll(() => {
  const found = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error('docker-compose is missing: bash .ci/setup installs it');
  const r = compose(EXAMPLE);
  if (r.status !== 0) throw new Error(`docker-compose config failed:\n${r.stderr}`);
  resolved = YAML.parse(r.stdout) as Compose;
});

const oneShot = (s: Service) => s.labels?.['quartermaster.one-shot'] === 'true';
const exampleVars = () =>
  new Map(
    fs
      .readFileSync(EXAMPLE, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
const SECRET_NAME = /PASSWORD|PWD|SECRET|TOKEN|CODEC_KEY/;

test('docker-compose 1.29 accepts the file with the example env; without it, it names what is missing', () => {
  expect(Object.keys(resolved.services).sort()).toEqual(
    [
      'api',
      'codec',
      'grafana',
      'postgresql',
      'prometheus',
      'temporal',
      'temporal-schema',
      'temporal-setup',
      'ui',
      'worker',
    ].sort(),
  );
  const blank = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qm-compose-')), 'blank.env');
  fs.writeFileSync(blank, '# nothing set\n');
  const empty = compose(blank);
  fs.rmSync(path.dirname(blank), { recursive: true });
  expect(empty.status).not.toBe(0);
  expect(empty.stderr).toMatch(
    /set (POSTGRES_PASSWORD|QM_CODEC_KEY|QM_CODEC_TOKEN|QM_API_SECRETS|GRAFANA_ADMIN_PASSWORD) in \.env/,
  );
});

test('every long-running service has a healthcheck and restarts unless stopped; one-shot jobs restart on failure and are awaited', () => {
  for (const [name, s] of Object.entries(resolved.services)) {
    if (oneShot(s)) {
      expect([name, s.restart]).toEqual([name, expect.stringMatching(/^on-failure/)]);
      expect([name, s.healthcheck]).toEqual([name, { test: ['NONE'] }]); // 1.29's form of disable: true
    } else {
      expect([name, s.restart]).toEqual([name, 'unless-stopped']);
      const check = [s.healthcheck?.test ?? []].flat();
      expect([name, check.length > 1 && check[0] !== 'NONE']).toEqual([name, true]);
    }
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      const target = resolved.services[dep]!;
      expect(target).toBeDefined();
      if (oneShot(target))
        expect([name, dep, condition]).toEqual([name, dep, 'service_completed_successfully']);
    }
  }
  // the chain that makes Temporal usable before any worker starts
  expect(resolved.services.temporal!.depends_on).toEqual({
    'temporal-schema': { condition: 'service_completed_successfully' },
  });
  expect(resolved.services.worker!.depends_on!['temporal-setup']).toEqual({
    condition: 'service_completed_successfully',
  });
  expect(resolved.services['temporal-setup']!.command).toEqual(['dist/workers/setupTemporal.js']);
});

test('images are pinned (no latest, no untagged third-party image)', () => {
  for (const [name, s] of Object.entries(resolved.services)) {
    const image = s.image ?? '';
    expect([name, image]).toEqual([name, expect.stringMatching(/^[\w./-]+:[\w.-]+$/)]);
    expect(image.endsWith(':latest')).toBe(false);
  }
});

test('no secret value in docker-compose.yml: every secret comes from .env, the example holds only placeholders', () => {
  const raw = YAML.parse(fs.readFileSync(COMPOSE, 'utf8'), { merge: true }) as Compose;
  const example = exampleVars();
  for (const [name, s] of Object.entries(raw.services))
    for (const [key, value] of Object.entries(s.environment ?? {}))
      if (SECRET_NAME.test(key))
        expect([name, key, value]).toEqual([
          name,
          key,
          expect.stringMatching(/^\$\{[A-Z0-9_]+(:\?[^}]*)?\}$/),
        ]);
  for (const [key, value] of example)
    if (SECRET_NAME.test(key)) expect([key, value]).toEqual([key, 'CHANGE-ME']);
  // resolved with the example, the services get exactly those placeholders
  expect(resolved.services.worker!.environment!.QM_CODEC_KEY).toBe('CHANGE-ME');
  expect(resolved.services.temporal!.environment!.POSTGRES_PWD).toBe('CHANGE-ME');
});

test('every variable docker-compose.yml reads is documented in the example, and the example has no stale one', () => {
  const text = fs.readFileSync(COMPOSE, 'utf8');
  const used = new Set([...text.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
  const documented = new Set(exampleVars().keys());
  expect([...used].filter((v) => !documented.has(v))).toEqual([]);
  expect([...documented].filter((v) => !used.has(v))).toEqual([]);
  // each documented variable has a comment right above it (or in the block it belongs to)
  const lines = fs.readFileSync(EXAMPLE, 'utf8').split('\n');
  for (const [i, l] of lines.entries())
    if (/^[A-Z0-9_]+=/.test(l) && !/^[A-Z0-9_]+=/.test(lines[i - 1] ?? ''))
      expect([l, lines[i - 1]]).toEqual([l, expect.stringMatching(/^#/)]);
});

test('the Web UI decodes through the codec server: its endpoint carries the token and reaches the published codec port', () => {
  const ui = resolved.services.ui!.environment!;
  expect(ui.TEMPORAL_CODEC_ENDPOINT).toBe('http://localhost:8481/codec/CHANGE-ME');
  expect(ui.TEMPORAL_ADDRESS).toBe('temporal:7233');
  const codec = resolved.services.codec!;
  expect(codec.command).toEqual(['dist/workers/codecServer.js']);
  expect(codec.environment!.QM_CODEC_UI_ORIGINS).toBe(ui.TEMPORAL_CORS_ORIGINS);
  // published on the port the UI's endpoint names (the browser calls it, not the UI's server)
  const port = new URL(ui.TEMPORAL_CODEC_ENDPOINT!).port;
  expect(codec.ports).toEqual([`127.0.0.1:${port}:8481/tcp`]);
});

test('the worker: SSH key as a compose secret (file), inventory mounted read-only, stops after its grace time', () => {
  const worker = resolved.services.worker!;
  expect(worker.secrets?.map((s) => (typeof s === 'string' ? s : s.source))).toEqual(['qm_ssh_key']);
  expect(resolved.secrets.qm_ssh_key!.file).toMatch(/deploy\/secrets\/qm_ssh_key$/);
  expect(worker.environment!.QM_SSH_KEY).toBe('/run/secrets/qm_ssh_key');
  expect(worker.volumes).toEqual([
    expect.stringMatching(/\/deploy\/fleet\.yaml:\/etc\/quartermaster\/fleet\.yaml:ro$/),
  ]);
  expect(worker.environment!.QM_INVENTORY).toBe('/etc/quartermaster/fleet.yaml');
  const grace = Number(worker.environment!.QM_SHUTDOWN_GRACE_SECONDS);
  expect(Number.parseInt(worker.stop_grace_period!, 10)).toBeGreaterThan(grace);
  expect(worker.environment!.QM_METRICS_HOST).toBe('0.0.0.0'); // Prometheus scrapes it over the network
});

test("each Quartermaster service gets only variables its process's schema knows (no typo goes unnoticed)", () => {
  const known = (schema: { shape: object }) => new Set(Object.keys(schema.shape));
  const checks: [string, Set<string>][] = [
    ['worker', known(WorkerEnv)],
    ['api', known(ApiEnv)],
    ['codec', known(CodecServerEnv)],
    ['temporal-setup', known(SetupEnv)],
  ];
  for (const [name, vars] of checks)
    for (const key of Object.keys(resolved.services[name]!.environment ?? {}))
      expect([name, key, vars.has(key)]).toEqual([name, key, true]);
});

test('every file the services run exists in the sources (dist/X.js is built from X.ts)', () => {
  const files = new Set<string>();
  for (const s of Object.values(resolved.services))
    for (const arg of [...(s.command ?? []), ...[s.healthcheck?.test ?? []].flat()])
      if (/^dist\/.+\.js$/.test(arg)) files.add(arg);
  expect(files.size).toBeGreaterThanOrEqual(4);
  for (const f of files)
    expect([f, fs.existsSync(path.join(ROOT, f.replace(/^dist\//, '').replace(/\.js$/, '.ts')))]).toEqual([
      f,
      true,
    ]);
  for (const f of [
    'deploy/temporal/schema.sh',
    'deploy/temporal/config.yaml',
    'deploy/prometheus/prometheus.yml',
    'deploy/temporal/dynamicconfig/production.yaml',
  ])
    expect(fs.existsSync(path.join(ROOT, f))).toBe(true);
  execFileSync('sh', ['-n', path.join(ROOT, 'deploy/temporal/schema.sh')]); // the schema job's script parses
});

test('the example inventory is a valid fleet inventory', () => {
  const example = YAML.parse(fs.readFileSync(path.join(ROOT, 'deploy', 'fleet.example.yaml'), 'utf8'));
  expect(Inventory.parse(example).hosts.map((h) => h.name)).toEqual(['proxy1', 'app1', 'app2', 'db1']);
});
