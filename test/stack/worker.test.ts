import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../../dev/temporal';
import { CLIENT_KEY, INVENTORY } from '../../dev/fleet';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { buildApp, parseLine, runWorker, type WorkerProcess } from './compiledWorker';

/**
 * The worker as the image runs it: compiled by `npm run build` (tsc + the prebuilt workflow
 * bundle), started with `node dist/workers/main.js` against the jest setup's Temporal dev server
 * and the test bed, then stopped with SIGTERM.
 */

const address = process.env.QM_TEST_TEMPORAL_ADDRESS!;
let app: ReturnType<typeof buildApp>;
let bed: Bed;
const started: WorkerProcess[] = [];

beforeAll(async () => {
  app = buildApp();
  bed = await openBed();
}, 300_000);

afterAll(async () => {
  for (const w of started)
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  await bed?.close();
  app?.remove();
});

async function workerEnv(taskQueue: string, extra: Record<string, string> = {}) {
  return {
    TEMPORAL_ADDRESS: address,
    QM_TASK_QUEUE: taskQueue,
    QM_INVENTORY: INVENTORY,
    QM_SSH_KEY: CLIENT_KEY,
    QM_METRICS_PORT: String(await freePort()),
    QM_SDK_METRICS_PORT: String(await freePort()),
    ...extra,
  };
}

async function start(env: Record<string, string>): Promise<WorkerProcess> {
  const w = runWorker(app.main, env);
  started.push(w);
  await w.waitForLine((l) => l.includes('worker on task queue'));
  return w;
}

async function metricsText(env: Record<string, string>): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${env.QM_METRICS_PORT}/metrics`);
  expect(r.status).toBe(200);
  return r.text();
}

/** Scrape until `test` holds (a refresh runs every QM_METRICS_REFRESH_SECONDS), as long as the test may run. */
async function scrapeUntil(env: Record<string, string>, test: (text: string) => boolean): Promise<string> {
  return eventually(
    async () => {
      const text = await metricsText(env);
      return test(text) && text;
    },
    { what: 'the metrics a test looks for', timeoutMs: 120_000, intervalMs: 250 },
  );
}

/** The value of one sample, found by its name and the labels it must have. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1).replace('+Inf', 'Infinity'));
  }
  return undefined;
}

test('bad configuration: the compiled worker exits 1 with one error naming every bad variable, no secret', async () => {
  const secret = 'not-a-key-' + randomBytes(8).toString('hex');
  const w = runWorker(app.main, {
    QM_CODEC_KEY: secret,
    QM_METRICS_PORT: 'eighty',
    QM_INVENTORY: '/nonexistent.yaml',
  });
  const { code } = await w.exited;
  expect(code).toBe(1);
  const err = w.stderr();
  for (const v of ['QM_INVENTORY', 'QM_SSH_KEY', 'QM_CODEC_KEY', 'QM_METRICS_PORT']) expect(err).toContain(v);
  expect(err).not.toContain(secret);
});

test('compiled worker: a checkFleet run shows in /metrics (SDK and platform), logs are JSON lines with the ids, SIGTERM exits 0', async () => {
  const taskQueue = `stack-${randomUUID().slice(0, 8)}`;
  const env = await workerEnv(taskQueue, { QM_LOG_LEVEL: 'debug', QM_METRICS_REFRESH_SECONDS: '1' });
  const w = await start(env);
  expect((await fetch(`http://127.0.0.1:${env.QM_METRICS_PORT}/healthz`)).status).toBe(200);

  // sites as the site workflows publish them: one with a verified backup, one never backed up
  const backedUp = `stk-${randomUUID().slice(0, 6)}`;
  const never = `stk-${randomUUID().slice(0, 6)}`;
  const backupAt = new Date(Date.now() - 3600_000);
  const sites = [
    { siteId: backedUp, lastGoodBackup: { backupId: 'b-1', at: backupAt.toISOString() } },
    { siteId: never },
  ];
  for (const s of sites)
    await bed.env.client.workflow.start('site', {
      taskQueue,
      workflowId: `site:${s.siteId}`,
      args: [{ siteId: s.siteId, carried: { record: { ...s, state: 'active' }, queue: [] } }],
    });

  const handle = await bed.env.client.workflow.start('checkFleet', {
    taskQueue,
    workflowId: `stack-check-${randomUUID()}`,
    args: [{}],
  });
  const result = (await handle.result()) as { healthy: string[] };
  expect(result.healthy.length).toBeGreaterThan(0);
  const runId = handle.firstExecutionRunId;

  // the site workflows publish their search attributes on their first workflow task: until then
  // visibility lists them without State (state="unknown"); wait for the published ones
  const text = await scrapeUntil(env, (t) =>
    [never, backedUp].every(
      (site) =>
        sample(t, 'qm_site_last_good_backup_age_seconds', { site_id: site, state: 'active' }) !== undefined,
    ),
  );
  // the SDK's (Temporal core) metrics, for this task queue
  expect(
    sample(text, 'temporal_workflow_completed_total', { task_queue: taskQueue, workflow_type: 'checkFleet' }),
  ).toBe(1);
  expect(
    sample(text, 'temporal_activity_execution_latency_count', {
      task_queue: taskQueue,
      activity_type: 'checkHost',
    }),
  ).toBe(result.healthy.length);
  // the platform's operation metrics, counted inside the workflow sandbox
  const op = { taskQueue, workflowType: 'checkFleet' };
  expect(sample(text, 'qm_operations_started_total', op)).toBe(1);
  expect(sample(text, 'qm_operations_finished_total', { ...op, outcome: 'completed' })).toBe(1);
  expect(sample(text, 'qm_operation_duration_seconds_count', { ...op, outcome: 'completed' })).toBe(1);
  // backup age from visibility: about an hour for one site, +Inf for the other
  const age = sample(text, 'qm_site_last_good_backup_age_seconds', { site_id: backedUp, state: 'active' })!;
  expect(age).toBeGreaterThanOrEqual(3600);
  expect(age).toBeLessThan(3600 + 600);
  expect(sample(text, 'qm_site_last_good_backup_timestamp_seconds', { site_id: backedUp })).toBe(
    backupAt.getTime() / 1000,
  );
  expect(sample(text, 'qm_site_last_good_backup_age_seconds', { site_id: never })).toBe(Infinity);
  // drained backends per app host, from the proxies (none drained on a fresh bed)
  for (const h of bed.fleet.hosts.filter((x) => x.roles.includes('app')))
    expect(sample(text, 'qm_host_drained_backends', { host: h.name })).toBe(0);
  expect(sample(text, 'qm_metrics_refresh_failures_total', { source: 'proxies' })).toBe(0);
  expect(sample(text, 'qm_sdk_metrics_up', {})).toBe(1);
  expect(sample(text, 'qm_nodejs_eventloop_lag_seconds', {})).toBeGreaterThanOrEqual(0);
  // the Grafana dashboard asks only for metrics the worker serves (failures appear with the first one)
  const served = (name: string) =>
    text.includes(`\n${name}{`) || text.includes(`\n${name} `) || text.includes(`# TYPE ${name} `);
  for (const name of dashboardMetrics())
    if (name !== 'temporal_activity_execution_failed_total')
      expect([name, served(name)]).toEqual([name, true]);

  for (const s of sites) await bed.env.client.workflow.getHandle(`site:${s.siteId}`).terminate('test over');
  w.child.kill('SIGTERM');
  expect((await w.exited).code).toBe(0);

  // every line is one JSON object; the activity lines carry the workflow's and the activity's ids
  const logs = w.lines().map(parseLine);
  for (const l of logs)
    expect(l).toEqual(
      expect.objectContaining({
        time: expect.any(String),
        level: expect.any(String),
        msg: expect.any(String),
      }),
    );
  const done = logs.filter((l) => l.msg === 'Activity completed' && l.workflowId === handle.workflowId);
  expect(done.map((l) => l.activityType)).toEqual(expect.arrayContaining(['listHosts', 'checkHost']));
  for (const l of done)
    expect(l).toEqual(
      expect.objectContaining({
        runId,
        workflowRunId: runId,
        activityId: expect.any(String),
        workflowType: 'checkFleet',
      }),
    );
  expect(JSON.stringify(logs)).not.toContain(CLIENT_KEY_CONTENT());
  expect(logs.at(-1)!.msg).toBe('worker stopped');
});

test('SIGTERM during an activity: the activity finishes on this worker, then the process exits 0', async () => {
  const taskQueue = `stack-${randomUUID().slice(0, 8)}`;
  const env = await workerEnv(taskQueue, {
    QM_WORKFLOW_BUNDLE: process.env.QM_TEST_WORKFLOW_BUNDLE!, // the test bundle has runActivity
    QM_SHUTDOWN_GRACE_SECONDS: '600',
  });
  const w = await start(env);
  const marker = `/root/qm-stack-${randomUUID().slice(0, 8)}`;
  const host = bed.fleet.hosts[0]!.name;
  // a remote command that runs until the test lets it end
  const script = 'touch "$1.started"; while [ ! -e "$1.release" ]; do sleep 0.1; done; rm -f "$1".*';
  const handle = await bed.env.client.workflow.start('runActivity', {
    taskQueue,
    workflowId: `stack-drain-${randomUUID()}`,
    args: [
      {
        activity: 'rebootRequired',
        args: [{ host, command: ['sh', '-c', script, 'qm-test', marker] }],
        options: { startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 1 } },
      },
    ],
  });
  const exists = async (p: string) =>
    (await bed.fleet.pool.exec(host, ['test', '-e', p], { check: false })).code === 0;
  await eventually(() => exists(`${marker}.started`), {
    what: 'the activity to start on the host',
    timeoutMs: 120_000,
    intervalMs: 100,
  });

  w.child.kill('SIGTERM');
  await w.waitForLine((l) => l.includes('"state":"DRAINING"'));
  expect(w.child.exitCode).toBeNull(); // still running: the activity holds it
  await bed.fleet.pool.exec(host, ['touch', `${marker}.release`]);

  expect(await w.exited).toEqual({ code: 0, signal: null });
  const events = (await handle.fetchHistory()).events ?? [];
  const started = events.filter((e) => e.activityTaskStartedEventAttributes);
  const completed = events.filter((e) => e.activityTaskCompletedEventAttributes);
  expect(started).toHaveLength(1);
  expect(started[0]!.activityTaskStartedEventAttributes!.attempt).toBe(1);
  expect(completed).toHaveLength(1); // completed by the worker that was draining, not cancelled
  expect(
    events.some((e) => e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes),
  ).toBe(false);
  expect(await exists(`${marker}.started`)).toBe(false); // the command ran to its end
  await handle.terminate('test over');
});

/** Every qm_ and temporal_ metric the dashboard's queries use. */
function dashboardMetrics(): string[] {
  const file = path.join(__dirname, '..', '..', 'deploy', 'grafana', 'dashboards', 'quartermaster.json');
  const dashboard = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  return [
    ...new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:qm|temporal)_[a-z0-9_]+)/g)].map((m) => m[1]!))),
  ];
}

/** A line from the middle of the worker's private key: were the key ever logged, it would show. */
function CLIENT_KEY_CONTENT(): string {
  const lines = fs.readFileSync(CLIENT_KEY, 'utf8').trim().split('\n');
  return lines[Math.floor(lines.length / 2)]!;
}
