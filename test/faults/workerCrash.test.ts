import type { ChildProcess } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { sitePaths } from '../../activities/proxy/layout';
import { testbed } from '../../dev/fleet';
import { nightlyBackupId } from '../../protocol/ids';
import { nightlyProgressQuery } from '../../protocol/nightlyBackups';
import { progressQuery } from '../../protocol/operations';
import { siteQuery, siteWorkflowId, type LockHolder } from '../../protocol/site';
import type { Placement, SiteRecord } from '../../schema/site';
import {
  changePlan,
  deployRelease,
  deprovisionSite,
  nightlyBackups,
  provisionSite,
  resumeSite,
  rollbackSite,
  suspendSite,
} from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { fetchSite, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { uniqueTaskQueue } from '../support/temporal';
import { killWorker, startWorkerProcess } from '../support/workerProcess';
import {
  createSmallSite,
  removeSmallSite,
  waitUntilListedActive,
  type SmallSite,
} from '../backup/smallSites';
import { Clone } from '../deploy/gitBed';

/**
 * The worker SIGKILLed in the middle of suspend (with a plan change queued behind it), resume,
 * rollbackSite and nightlyBackups, on the real bed, a new worker started at once: each operation
 * completes exactly once on the new worker (one result, one change of the site's record, the lock
 * free again), and what the hosts run matches the record (containers stopped or running on the
 * recorded release, no standby, the route's mode and ports). One provisioned site (2 app
 * servers) for the file, on the real worker process (workers/main.ts); two small sites beside it
 * for the nightly run.
 */

jest.setTimeout(300_000);

let bed: Bed;
let worker: ChildProcess | undefined;
const taskQueue = uniqueTaskQueue('faults');
const tag = Math.random().toString(36).slice(2, 7);
const site = testSite({ siteId: `wc-${tag}` });
const { siteId } = site;
const domain = site.domains![0]!;
let placement: Placement;
let clone: Clone | undefined;
let deployed: string;
const small: SmallSite[] = [];

const op = (name: string) => `${name}-${siteId}`;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorkerProcess(taskQueue, { prebuiltBundle: true });
  placement = (
    await bed.env.client.workflow.execute(provisionSite, {
      taskQueue,
      workflowId: op('provision'),
      args: [{ site, triggeredBy: 'test' }],
    })
  ).placement;
  // a release to roll back from
  clone = await Clone.create(bed.fleet, site.git!.repo);
  deployed = (await clone.push('main', { VERSION: 'v1\n' }, 'v1')).commit;
  await bed.env.client.workflow.execute(deployRelease, {
    taskQueue,
    workflowId: op('deploy'),
    args: [{ siteId, commit: deployed, triggeredBy: 'test', drainSeconds: 1 }],
  });
  await expectHostsMatchRecord();
}, 300_000);

afterAll(async () => {
  try {
    if (placement) {
      await bed.env.client.workflow.execute(deprovisionSite, {
        taskQueue,
        workflowId: op('deprovision'),
        args: [{ siteId, skipFinalBackup: true }],
      });
      testbed.exec('host1', ['rm', '-rf', '--', `/srv/qm/backups/${siteId}`]);
      expect(await siteLeftovers(bed.fleet, siteId)).toEqual([]);
      await removeGitRepoOnHost(bed.fleet, site.git!.repo);
    }
    for (const s of small) await removeSmallSite(bed.env.client, bed.fleet, s);
  } finally {
    if (worker) await killWorker(worker, 'SIGTERM');
    clone?.remove();
    await bed?.close();
  }
}, 180_000);

/** SIGKILL the worker once `ready` holds, and start a new one on the same task queue; when it was killed. */
async function killWorkerWhen(ready: () => Promise<boolean>, what: string): Promise<number> {
  await eventually(ready, { what, timeoutMs: 120_000, intervalMs: 0, retryErrors: true });
  const killedAt = Date.now();
  await killWorker(worker!, 'SIGKILL');
  worker = await startWorkerProcess(taskQueue, { prebuiltBundle: true });
  return killedAt;
}

const stepOf = async (handle: WorkflowHandle) => (await handle.query(progressQuery)).step;

async function siteView() {
  return bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
}

/**
 * How many times each operation changed the site's record: the `updateRecord` signals in the site
 * workflow's history, by the operation's workflow id.
 */
async function recordUpdatesBy(): Promise<Record<string, number>> {
  const history = await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).fetchHistory();
  const counts: Record<string, number> = {};
  for (const e of history.events ?? []) {
    const s = e.workflowExecutionSignaledEventAttributes;
    if (s?.signalName !== 'updateRecord') continue;
    const { holder } = defaultPayloadConverter.fromPayload<{ holder: LockHolder }>(s.input!.payloads![0]!);
    counts[holder.workflowId] = (counts[holder.workflowId] ?? 0) + 1;
  }
  return counts;
}

/** What the hosts run for the site: `host:name` → `state release`. */
async function containersOnHosts(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of bed.fleet.hosts) {
    const list = await bed.fleet.docker
      .engine(h.name)
      .listContainers({ all: true, filters: JSON.stringify({ label: [`qm.site=${siteId}`] }) });
    for (const c of list)
      out[`${h.name}:${c.Names[0]!.replace(/^\//, '')}`] = `${c.State} ${c.Labels['qm.release'] ?? '-'}`;
  }
  return out;
}

/** The site's route as its proxy host stores it. */
function storedRoute(): { mode: string; backends: { port: number }[] } {
  return JSON.parse(testbed.exec(placement.proxyHosts[0]!, ['cat', sitePaths(siteId).json])) as {
    mode: string;
    backends: { port: number }[];
  };
}

/**
 * The hosts are as the record says, the lock is free: every container of the site (one app per
 * app server, no standby, a cache, a cron) running the recorded release when active, stopped when
 * suspended; the route in the record's mode on the live ports; through the proxy, the release or
 * the suspended page. The record, for the test's own checks.
 */
async function expectHostsMatchRecord(): Promise<SiteRecord> {
  const view = await siteView();
  const { record } = view;
  expect([view.holder, view.queue]).toEqual([undefined, []]);
  const running = record.state === 'active';
  const release = record.release!;
  const state = running ? 'running' : 'exited';
  const [first] = placement.appHosts;
  expect(await containersOnHosts()).toEqual({
    ...Object.fromEntries(placement.appHosts.map((h) => [`${h}:site-${siteId}-app`, `${state} ${release}`])),
    // the cache is not per release: it keeps the label of the release it was made on
    [`${placement.cacheHost}:site-${siteId}-cache`]: expect.stringMatching(`^${state} `),
    [`${first}:site-${siteId}-cron`]: `${state} ${release}`,
  });
  const route = storedRoute();
  expect(route.mode).toBe(running ? 'active' : 'suspended');
  expect(route.backends.map((b) => b.port)).toEqual(placement.appHosts.map(() => placement.port));
  const page = await fetchSite(bed.fleet, domain);
  if (running)
    expect([page.status, page.bodyExcerpt]).toEqual([200, expect.stringContaining(`release ${release}`)]);
  else expect([page.status, page.siteState]).toEqual([503, 'suspended']);
  return record;
}

test('SIGKILL during suspend, with a plan change queued behind it: both complete once on the new worker', async () => {
  const suspend = await bed.env.client.workflow.start(suspendSite, {
    taskQueue,
    workflowId: op('suspend'),
    args: [{ siteId, reason: 'unpaid', triggeredBy: 'test' }],
  });
  // the plan change queues behind the suspend: started once the suspend holds the site's lock,
  // and the worker killed at once (the suspend's steps take a second or two)
  await eventually(async () => (await siteView()).holder?.workflowId === suspend.workflowId, {
    what: 'the suspend to hold the lock',
    intervalMs: 0,
  });
  const plan = await bed.env.client.workflow.start(changePlan, {
    taskQueue,
    workflowId: op('change-plan'),
    args: [{ siteId, plan: 'business', triggeredBy: 'test' }],
  });
  const killedAt = await killWorkerWhen(async () => true, 'now');
  expect(await suspend.result()).toEqual({ siteId, state: 'suspended' });
  expect(await plan.result()).toMatchObject({ status: 'changed', plan: 'business', previous: 'starter' });
  // both were under way when the worker died, and the plan change ran after the suspend
  for (const h of [suspend, plan])
    expect((await h.describe()).closeTime!.getTime()).toBeGreaterThan(killedAt);

  const record = await expectHostsMatchRecord();
  expect([record.state, record.spec?.plan, record.release]).toEqual(['suspended', 'business', deployed]);
  const updates = await recordUpdatesBy();
  expect([updates[suspend.workflowId], updates[plan.workflowId]]).toEqual([1, 1]);
  expect(record.lastOperation).toBe(plan.workflowId);
});

test('SIGKILL during resume: it completes once on the new worker, every container running, the route active', async () => {
  const resume = await bed.env.client.workflow.start(resumeSite, {
    taskQueue,
    workflowId: op('resume'),
    args: [{ siteId, triggeredBy: 'test' }],
  });
  const killedAt = await killWorkerWhen(
    async () => (await stepOf(resume)) === 'start containers',
    'the resume to start containers',
  );
  expect(await resume.result()).toEqual({ siteId, state: 'active' });
  expect((await resume.describe()).closeTime!.getTime()).toBeGreaterThan(killedAt);

  const record = await expectHostsMatchRecord();
  expect([record.state, record.release]).toEqual(['active', deployed]);
  expect((await recordUpdatesBy())[resume.workflowId]).toBe(1);
});

test('SIGKILL during rollbackSite mid-switch: it completes once on the new worker, every server on the release, no standby', async () => {
  const rollback = await bed.env.client.workflow.start(rollbackSite, {
    taskQueue,
    workflowId: op('rollback'),
    args: [{ siteId, release: 'initial', triggeredBy: 'test', drainSeconds: 2 }],
  });
  const killedAt = await killWorkerWhen(async () => {
    const p = await rollback.query(progressQuery);
    return p.step === 'switch app servers' && Object.values(p.hosts).some((s) => /standby/.test(s));
  }, 'the rollback to start its standbys');
  expect(await rollback.result()).toMatchObject({
    status: 'rolled-back',
    release: 'initial',
    previous: deployed,
  });
  expect((await rollback.describe()).closeTime!.getTime()).toBeGreaterThan(killedAt);

  const record = await expectHostsMatchRecord();
  expect([record.state, record.release]).toEqual(['active', 'initial']);
  expect((await recordUpdatesBy())[rollback.workflowId]).toBe(1);
});

test('SIGKILL during nightlyBackups: the new worker backs every site up exactly once', async () => {
  for (const [n, dbHost] of ['host2', 'host3'].entries())
    small.push(
      await createSmallSite(bed.env.client, bed.fleet, taskQueue, {
        siteId: `wc-${tag}-n${n}`,
        dbHost,
        storageHost: 'host1',
      }),
    );
  const ids = [siteId, ...small.map((s) => s.siteId)].sort();
  await waitUntilListedActive(bed.env.client, ids);
  const nightly = await bed.env.client.workflow.start(nightlyBackups, {
    taskQueue,
    workflowId: op('nightly'),
    args: [{ windowMinutes: 0, perDbHost: 1, sites: ids, triggeredBy: 'test' }],
  });
  // killed while backups run (a dump, an archive or a verification under way)
  const killedAt = await killWorkerWhen(async () => {
    const { night } = await nightly.query(nightlyProgressQuery);
    const steps = await Promise.all(
      ids.map((id) => stepOf(bed.env.client.workflow.getHandle(nightlyBackupId(id, night))).catch(() => '')),
    );
    return steps.some((s) => /: (database|files|verify)$/.test(s));
  }, 'the nightly backups to be under way');
  const result = await nightly.result();
  expect((await nightly.describe()).closeTime!.getTime()).toBeGreaterThan(killedAt);
  expect(result).toMatchObject({ succeeded: ids, failed: [], alreadyDone: [], notActive: [] });

  // one backup per site, verified, recorded as its last good one, by its one nightly child
  for (const id of ids) {
    const stored = testbed
      .exec('host1', ['ls', '-A', `/srv/qm/backups/${id}`])
      .split('\n')
      .filter(Boolean);
    const { record } = await bed.env.client.workflow.getHandle(siteWorkflowId(id)).query(siteQuery);
    expect([stored, record.lastOperation]).toEqual([
      [record.lastGoodBackup?.backupId],
      nightlyBackupId(id, result.night),
    ]);
    const manifest = JSON.parse(
      testbed.exec('host1', ['cat', `/srv/qm/backups/${id}/${stored[0]}/manifest.json`]),
    ) as { verified: boolean; kind: string };
    expect([manifest.verified, manifest.kind]).toEqual([true, 'scheduled']);
  }
  expect((await recordUpdatesBy())[nightlyBackupId(siteId, result.night)]).toBe(1);
  const record = await expectHostsMatchRecord();
  expect(record.state).toBe('active');
});
