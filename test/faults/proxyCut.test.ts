import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { sitePaths } from '../../activities/proxy/layout';
import { filesMountProblem } from '../../activities/site/containers';
import { testbed } from '../../dev/fleet';
import { progressQuery } from '../../protocol/operations';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import type { Placement } from '../../schema/site';
import { deployRelease, deprovisionSite, provisionSite } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { fetchSite, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { startWorker, type FileWorker } from '../support/temporal';
import { Clone } from '../deploy/gitBed';

/**
 * The proxy host cut off the network in the middle of a deploy's switch, on the real bed (host1:
 * the proxy, and also the Git, storage and a DB host): for 30 s, and for good (healed only once
 * the deploy has ended), before and after the proxy was told to route to the standbys. The deploy
 * completes, or fails naming the host and the step; once healed, the site serves the release its
 * record holds from its live containers only (no standby), the proxy routing to the live ports.
 * Except after a cut for good once the proxy routes to the standbys: only the proxy could be
 * told otherwise, so the site is left failed for the converge operation of issue 22 item 1.
 * One provisioned site (2 app servers) for the file.
 */

jest.setTimeout(240_000);

let bed: Bed;
let worker: FileWorker;
const tag = Math.random().toString(36).slice(2, 7);
const site = testSite({ siteId: `pc-${tag}` });
const { siteId } = site;
const domain = site.domains![0]!;
let placement: Placement;
let proxy: string;
let clone: Clone | undefined;
/** Short health waits: a deploy whose proxy is gone fails in seconds, not after the default 2 minutes. */
const timing = { drainSeconds: 1, healthTimeoutSeconds: 15 };

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed);
  placement = (
    await bed.env.client.workflow.execute(provisionSite, {
      taskQueue: worker.taskQueue,
      workflowId: `provision-${siteId}`,
      args: [{ site, triggeredBy: 'test' }],
    })
  ).placement;
  proxy = placement.proxyHosts[0]!;
  expect(proxy).toBe('host1');
  clone = await Clone.create(bed.fleet, site.git!.repo);
}, 240_000);

afterAll(async () => {
  try {
    testbed.heal(proxy);
    if (placement) {
      await bed.env.client.workflow.execute(deprovisionSite, {
        taskQueue: worker.taskQueue,
        workflowId: `deprovision-${siteId}`,
        args: [{ siteId, skipFinalBackup: true }],
      });
      expect(await siteLeftovers(bed.fleet, siteId)).toEqual([]);
      await removeGitRepoOnHost(bed.fleet, site.git!.repo);
    }
  } finally {
    clone?.remove();
    await worker?.stop();
    await bed?.close();
  }
}, 240_000);

/** Push a commit and start its deploy; the handle and the commit. */
async function deploy(version: string, over: Partial<typeof timing> = {}) {
  const { commit } = await clone!.push('main', { VERSION: `${version}\n` }, version);
  const handle = await bed.env.client.workflow.start(deployRelease, {
    taskQueue: worker.taskQueue,
    workflowId: `deploy-${version}-${siteId}`,
    args: [{ siteId, commit, triggeredBy: 'test', ...timing, ...over }],
  });
  return { handle, commit };
}

/** Until the deploy's switch is at `where` (per its progress: the app hosts' lines). */
async function switchAt(handle: WorkflowHandle, where: RegExp, what: string): Promise<void> {
  await eventually(
    async () => {
      const p = await handle.query(progressQuery);
      return p.step === 'switch app servers' && Object.values(p.hosts).some((s) => where.test(s));
    },
    { what, timeoutMs: 120_000, intervalMs: 0, retryErrors: true },
  );
}

/** The deploy's failure (a DeployFailed), or undefined if it deployed. */
async function outcome(handle: WorkflowHandle): Promise<ApplicationFailure | undefined> {
  return handle.result().then(
    () => undefined,
    (err: unknown) => {
      expect(err).toBeInstanceOf(WorkflowFailedError);
      return (err as WorkflowFailedError).cause as ApplicationFailure;
    },
  );
}

/** What the app hosts run: the live container's release, and whether a standby is there. */
async function appContainers(): Promise<Record<string, { live?: string; standby: boolean }>> {
  const out: Record<string, { live?: string; standby: boolean }> = {};
  for (const host of placement.appHosts) {
    const list = await bed.fleet.docker.engine(host).listContainers({
      all: true,
      filters: JSON.stringify({ label: [`qm.site=${siteId}`, 'qm.role=app'] }),
    });
    const live = list.find((c) => c.Names[0] === `/site-${siteId}-app`);
    out[host] = {
      live: live?.State === 'running' ? live.Labels['qm.release'] : undefined,
      standby: list.some((c) => c.Names[0] === `/site-${siteId}-app-standby`),
    };
  }
  return out;
}

/**
 * Healed, the site is as its record says: every live container on the recorded release, no
 * standby, the route active on the live ports, the release served through the proxy. The record.
 */
async function expectServingItsRecord() {
  const { record } = await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
  const release = record.release!;
  expect(await appContainers()).toEqual(
    Object.fromEntries(placement.appHosts.map((h) => [h, { live: release, standby: false }])),
  );
  const route = JSON.parse(testbed.exec(proxy, ['cat', sitePaths(siteId).json])) as {
    mode: string;
    backends: { port: number }[];
  };
  expect([route.mode, route.backends.map((b) => b.port)]).toEqual([
    'active',
    placement.appHosts.map(() => placement.port),
  ]);
  for (let n = 0; n < placement.appHosts.length; n++) {
    const page = await fetchSite(bed.fleet, domain);
    expect([page.status, page.bodyExcerpt]).toEqual([200, expect.stringContaining(`release ${release}`)]);
  }
  return record;
}

let live = 'initial';

test('the proxy host cut for 30 s once it routes to the standbys: the deploy rides it out and completes', async () => {
  // patient health waits: a deploy outlasts a short outage of its proxy (and storage) host
  const { handle, commit } = await deploy('v1', { healthTimeoutSeconds: 90 });
  await switchAt(handle, /serving from standby/, 'the proxy to route to the standbys');
  testbed.cut(proxy);
  try {
    await new Promise((r) => setTimeout(r, 30_000));
  } finally {
    testbed.heal(proxy);
  }
  expect(await outcome(handle)).toBeUndefined();
  const record = await expectServingItsRecord();
  expect([record.state, record.release]).toEqual(['active', commit]);
  live = commit;
});

test('the proxy host cut for good while the standbys start: the deploy fails naming it, every server stays on the old release', async () => {
  const { handle } = await deploy('v2');
  await switchAt(handle, /starting standby/, 'the standbys to start');
  testbed.cut(proxy);
  let failure: ApplicationFailure | undefined;
  try {
    failure = await outcome(handle);
  } finally {
    testbed.heal(proxy);
  }
  expect(failure?.type).toBe('DeployFailed');
  expect(failure?.message).toMatch(/failed at "switch app servers": .*host1/);
  // the proxies were never told to move: the app servers alone are put back
  expect(failure?.message).toContain(`every app server is back on ${live.slice(0, 12)}`);
  const record = await expectServingItsRecord();
  expect([record.state, record.release]).toEqual(['active', live]);
});

test('the proxy host cut for good once it routes to the standbys: the deploy fails naming it, its rollback incomplete', async () => {
  const { handle } = await deploy('v3');
  await switchAt(handle, /serving from standby/, 'the proxy to route to the standbys');
  testbed.cut(proxy);
  let failure: ApplicationFailure | undefined;
  try {
    failure = await outcome(handle);
    // host1 keeps the site's files too: their mount on an app server stops answering, which is
    // a retryable failure naming the storage host (sshfs reconnects once it is back), never
    // "not mounted" (a Conflict, not retried, that failed deploys and their rollbacks for good)
    const problem = await eventually(
      () => filesMountProblem(bed.fleet, placement.appHosts[0]!, siteId, placement.storageHost),
      { what: 'the files mount to stop answering', timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect([problem.type, problem.nonRetryable]).toEqual(['CommandFailed', false]);
    expect(problem.message).toMatch(/mounted from host1\) do not answer: .*Input\/output error/);
  } finally {
    testbed.heal(proxy);
  }
  expect(failure?.type).toBe('DeployFailed');
  expect(failure?.message).toMatch(/failed at "switch app servers": .*host1/);
  // the proxy routes to the standbys, and only it can be told otherwise: the site is failed
  expect(failure?.message).toMatch(/ROLLBACK INCOMPLETE, ops must finish it: switch back to \w+: .*host1/);
  const { record } = await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
  expect([record.state, record.release]).toEqual(['failed', live]);
});

// Needs the converge operation of issue 22 item 1 (repairSite, another helper's work): nothing
// puts the reachable app servers back, nor the healed proxy. Once it lands, run it here after the
// heal and make this an ordinary test.
test.failing('healed after that, the site serves its recorded release, nothing half-switched', async () => {
  await expectServingItsRecord();
});
