import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { Placement } from '../../schema/site';
import type { RepairSiteResult } from '../../protocol/operations';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { sitePaths } from '../../activities/proxy/layout';
import { checkFleet, deployRelease, deprovisionSite, provisionSite } from '../../workflows';
import { testbed } from '../../dev/fleet';
import { EXIT } from '../../cli/qm';
import { openBed, type Bed } from '../support/bed';
import { recordHistory } from '../support/histories';
import { runQm } from '../support/qm';
import { fetchSite, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { startWorker, type FileWorker } from '../support/temporal';
import { Clone } from '../deploy/gitBed';

/**
 * A deploy that loses an app server for good while its postDeploy hook runs: the switch back
 * cannot reach that server (ROLLBACK INCOMPLETE), so the site is failed, with its cause and what
 * is out of line; the server that stayed reachable is converged at once and serves the release the
 * site started from (not the new commit's standby, not the maintenance page). A repair while the
 * server is still cut converges what it can and keeps the site failed, naming that server; once
 * it is back, the fleet check's repair makes the site active on both servers again.
 */

jest.setTimeout(600_000);

let bed: Bed;
let worker: FileWorker;
let clone: Clone;
const site = testSite({ siteId: `rep-s-${Math.random().toString(36).slice(2, 7)}` });
const domain = site.domains![0]!;
let placement: Placement;
let lost: string;
/** Set: the next postDeploy hook cuts this host off the network first (for good, until healed). */
let cutAtHooks: string | undefined;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed, {
    overrides: (real) => ({
      runPostDeployHooks: async (input) => {
        if (cutAtHooks) testbed.cut(cutAtHooks);
        cutAtHooks = undefined;
        return real.runPostDeployHooks(input);
      },
    }),
  });
  placement = (
    await bed.env.client.workflow.execute(provisionSite, {
      taskQueue: worker.taskQueue,
      workflowId: `provision-${site.siteId}`,
      args: [{ site, triggeredBy: 'test' }],
    })
  ).placement;
  // the server lost: an app server that holds nothing else of the site (hooks and cron run on the first)
  lost = placement.appHosts[1]!;
  expect([
    placement.dbHost,
    placement.storageHost,
    placement.cacheHost,
    ...placement.proxyHosts,
  ]).not.toContain(lost);
  clone = await Clone.create(bed.fleet, site.git!.repo);
});

afterAll(async () => {
  try {
    if (lost) testbed.heal(lost);
    await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue: worker.taskQueue,
      workflowId: `deprovision-${site.siteId}`,
      args: [{ siteId: site.siteId, skipFinalBackup: true }],
    });
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  } finally {
    clone?.remove();
    await worker?.stop();
    await bed?.close();
  }
});

async function recordOf() {
  return (await bed.env.client.workflow.getHandle(siteWorkflowId(site.siteId)).query(siteQuery)).record;
}

/** The app containers on a host: the live one's release, and whether a standby is there. */
async function appOn(host: string): Promise<{ live?: string; standby: boolean }> {
  const list = await bed.fleet.docker.engine(host).listContainers({
    all: true,
    filters: JSON.stringify({ label: [`qm.site=${site.siteId}`, 'qm.role=app'] }),
  });
  const live = list.find((c) => c.Names[0] === `/site-${site.siteId}-app`);
  return {
    live: live?.State === 'running' ? live.Labels['qm.release'] : undefined,
    standby: list.some((c) => c.Names[0] === `/site-${site.siteId}-app-standby`),
  };
}

/** The route on the proxy: its mode and each backend's host, port and state. */
async function route(): Promise<{ mode: string; backends: string[] }> {
  const r = await bed.fleet.pool.exec(placement.proxyHosts[0]!, ['cat', sitePaths(site.siteId).json]);
  const json = JSON.parse(r.stdout) as {
    mode: string;
    backends: { host: string; port: number; state: string }[];
  };
  return { mode: json.mode, backends: json.backends.map((b) => `${b.host}:${b.port} ${b.state}`) };
}

/** Every answer through the proxy, 6 of them: status and the page's first line. */
async function pages(): Promise<string[]> {
  const seen: string[] = [];
  for (let n = 0; n < 6; n++) {
    const r = await fetchSite(bed.fleet, domain);
    seen.push(`${r.status} ${r.bodyExcerpt.split('\n')[0]}`);
  }
  return seen;
}

test('a deploy that loses an app server for good mid-deploy: failed with its cause, the reachable server serves the old release', async () => {
  const { commit } = await clone.push('main', { VERSION: 'v1\n' }, 'v1');
  cutAtHooks = lost;
  const err = await bed.env.client.workflow
    .execute(deployRelease, {
      taskQueue: worker.taskQueue,
      workflowId: `deploy-stranded-${site.siteId}`,
      args: [
        { siteId: site.siteId, commit, triggeredBy: 'ops:test', drainSeconds: 1, healthTimeoutSeconds: 30 },
      ],
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(failure.type).toBe('DeployFailed');
  expect(failure.message).toContain('ROLLBACK INCOMPLETE, the site is failed');
  expect(failure.message).toContain(`qm repair ${site.siteId}`);
  expect(failure.details?.[0]).toMatchObject({
    rolledBack: false,
    databaseRestored: true,
    outOfLine: expect.arrayContaining([expect.stringMatching(new RegExp(`^${lost}: unreachable`))]),
  });

  // the record: failed, with the deploy's cause and what is out of line
  const record = await recordOf();
  expect(record).toMatchObject({
    state: 'failed',
    release: 'initial',
    failure: {
      operation: 'deploy',
      workflowId: `deploy-stranded-${site.siteId}`,
      stateBefore: 'active',
      outOfLine: expect.arrayContaining([expect.stringMatching(new RegExp(`^${lost}: unreachable`))]),
    },
  });
  expect(record.failure!.databaseSnapshot).toBeUndefined(); // restored by the rollback itself
  await recordHistory(`deploy-stranded-${site.siteId}`, 'deployRelease.stranded');

  // the reachable server serves the release the site started from, through the proxy; the lost one is drained
  const [kept] = placement.appHosts;
  expect(await appOn(kept!)).toEqual({ live: 'initial', standby: false });
  expect(await route()).toEqual({
    mode: 'active',
    backends: [`${kept}:${placement.port} active`, `${lost}:${placement.port} drained`],
  });
  expect(await pages()).toEqual(
    Array(6).fill(`200 site ${site.siteId} release initial on ${await hostnameOfApp(kept!)}`),
  );
});

test('qm repair while the server is still cut: what answers is in line, the site stays failed naming that server', async () => {
  const { code, lines: out } = await runQm(
    ['repair', site.siteId, '--key', 'while-cut', '--reason', `${lost} is cut`],
    worker.taskQueue,
  );
  expect(code).toBe(EXIT.ok);
  const operationId = `repair:${site.siteId}:while-cut`;
  expect(out[0]).toBe(`started ${operationId}`);
  expect(out.join('\n')).toContain(`step 2: who answers`);
  const r: RepairSiteResult = await bed.env.client.workflow.getHandle(operationId).result();
  expect(r).toMatchObject({ status: 'out-of-line', stateBefore: 'failed', state: 'failed' });
  expect(r.hosts[lost]).toMatchObject({ reachable: false, changed: [] });
  expect(r.outOfLine).toEqual([
    expect.stringMatching(new RegExp(`^${lost}: unreachable`)),
    `${lost}: drained in every route until it is repaired`,
  ]);
  expect(r.hosts[placement.appHosts[0]!]).toMatchObject({ changed: [], outOfLine: [] });
  expect(Object.values(r.health)).toEqual([expect.stringMatching(/^ok/)]);
  expect((await recordOf()).failure).toMatchObject({ operation: 'deploy', outOfLine: r.outOfLine });
  expect(new Set(await pages()).size).toBe(1);
});

test('the server back: the fleet check repairs the site, active on both servers on the recorded release', async () => {
  testbed.heal(lost);
  const check = await bed.env.client.workflow.execute(checkFleet, {
    taskQueue: worker.taskQueue,
    workflowId: `check-healed-${site.siteId}`,
    args: [{ sites: [site.siteId], repair: true }],
  });
  expect(check.sites.map((s) => [s.siteId, s.state])).toEqual([[site.siteId, 'failed']]);
  expect(check.sites[0]!.problems).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^failed: deploy failed at /),
      // what the cut left there: the new commit, live, and its standby
      expect.stringMatching(new RegExp(`^${lost}: app runs release [0-9a-f]{40}, the record says initial$`)),
      `${lost}: a standby app container is left`,
    ]),
  );
  expect(check.repairs).toEqual([{ siteId: site.siteId, workflowId: expect.any(String), started: true }]);
  const r: RepairSiteResult = await bed.env.client.workflow.getHandle(check.repairs[0]!.workflowId!).result();
  expect(r).toMatchObject({ status: 'repaired', outOfLine: [], stateBefore: 'failed', state: 'active' });
  expect(r.hosts[lost]!.changed).toEqual(
    expect.arrayContaining(['app live on initial (switched through the standby)', 'standby removed']),
  );

  const record = await recordOf();
  expect(record).toMatchObject({ state: 'active', release: 'initial', failure: null });
  for (const host of placement.appHosts)
    expect(await appOn(host)).toEqual({ live: 'initial', standby: false });
  expect((await route()).backends).toEqual(placement.appHosts.map((h) => `${h}:${placement.port} active`));
  const served = await pages();
  expect(served.every((p) => p.startsWith(`200 site ${site.siteId} release initial on `))).toBe(true);
  expect(new Set(served).size).toBe(2);
});

/** The hostname the app container on `host` shows in its page (its container id's first 12 digits). */
async function hostnameOfApp(host: string): Promise<string> {
  const info = await bed.fleet.docker.engine(host).getContainer(`site-${site.siteId}-app`).inspect();
  return info.Config.Hostname;
}
