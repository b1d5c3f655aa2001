import type { ChildProcess } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { makeGitActivities } from '../../activities/git/activities';
import { sign } from '../../api/signature';
import { sitePaths } from '../../activities/proxy/layout';
import { siteNames, type Placement } from '../../schema/site';
import type { ProvisionSiteResult } from '../../protocol/operations';
import { deployRelease, deprovisionSite, provisionSite, rollbackSite } from '../../workflows';
import { deployWorkflowId } from '../../protocol/ids';
import { progressQuery } from '../../protocol/operations';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { fetchSite, gitRepoOnHost, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { killWorker, startWorkerProcess } from '../support/workerProcess';
import { testbed } from '../../dev/fleet';
import { Clone, pollSite, startDeployBed, type DeployBed } from './gitBed';

/**
 * Deploys end to end on the real bed: a real Git server (bare repositories on host1, pushed to over
 * SSH, the platform's post-receive hook signing its notification to the webhook), sites provisioned
 * by provisionSite on the test profile (2 app servers behind the real nginx), the release folders,
 * the standby/live switch and the rollbacks. Outcomes are checked on the hosts and through the
 * proxy, as a visitor sees the site.
 */

jest.setTimeout(240_000);

let bed: Bed;
let deploy: DeployBed;
let clone: Clone;
const tag = Math.random().toString(36).slice(2, 7);
const repo = `customers/dep-${tag}.git`;
const siteA = testSite({ siteId: `dep-a-${tag}`, git: { repo, branch: 'main' } });
const siteB = testSite({ siteId: `dep-b-${tag}`, git: { repo, branch: 'other' }, appServers: 1 });
let placement: Placement;
let provisioned: ProvisionSiteResult[];
let worker: ChildProcess | undefined;
const commits: string[] = [];
/** Every release a deploy of site A took a database snapshot for (it got past "resolve"). */
const snapshotted: string[] = [];

beforeAll(async () => {
  bed = await openBed();
  deploy = await startDeployBed(bed, { drainSeconds: 1, healthTimeoutSeconds: 30 });
  // one after the other: placeSite does not reserve a port against a provision running beside it
  const results = [];
  for (const site of [siteA, siteB])
    results.push(
      await bed.env.client.workflow.execute(provisionSite, {
        taskQueue: deploy.taskQueue,
        workflowId: `provision-${site.siteId}`,
        args: [{ site, triggeredBy: 'test' }],
      }),
    );
  placement = results[0]!.placement;
  provisioned = results;
  clone = await Clone.create(bed.fleet, repo);
});

afterAll(async () => {
  try {
    for (const site of [siteA, siteB])
      await bed.env.client.workflow
        .execute(deprovisionSite, {
          taskQueue: deploy.taskQueue,
          workflowId: `deprovision-${site.siteId}`,
          args: [{ siteId: site.siteId, skipFinalBackup: true }],
        })
        .catch((err: unknown) => console.error(`deprovision ${site.siteId}:`, err));
    // deprovisioning removed the release folders everywhere (siteLeftovers looks) and kept the repository
    for (const site of [siteA, siteB]) expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    expect(await gitRepoOnHost(bed.fleet, repo)).toMatchObject({ exists: true, hasRefs: true });
    await removeGitRepoOnHost(bed.fleet, repo);
  } finally {
    if (worker) await killWorker(worker, 'SIGTERM');
    clone?.remove();
    await deploy?.stop();
    await bed?.close();
  }
});

/** What each app host runs: the live container's release label, and whether a standby is there. */
async function onHosts(siteId: string, hosts: string[]) {
  const out: Record<string, { live?: string; standby: boolean }> = {};
  for (const host of hosts) {
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

/** The backend ports of the site's route as stored on the proxy host. */
async function routePorts(siteId: string): Promise<number[]> {
  const proxy = bed.fleet.hosts.find((h) => h.roles.includes('proxy'))!.name;
  const r = await bed.fleet.pool.exec(proxy, ['cat', sitePaths(siteId).json]);
  return (JSON.parse(r.stdout) as { backends: { port: number }[] }).backends.map((b) => b.port);
}

/** The releases (12 hex) of the deploy snapshots of a site on its DB host, sorted. */
async function snapshotReleases(siteId: string): Promise<string[]> {
  const r = await bed.fleet.pool.exec(placement.dbHost, [
    'sh',
    '-c',
    'cd "$1" 2>/dev/null && ls -1 -- deploy-*.sql.gz 2>/dev/null || true',
    'qm',
    `/srv/qm/snapshots/${siteNames(siteId).database}`,
  ]);
  return [
    ...new Set(
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((f) => f.slice('deploy-'.length, 'deploy-'.length + 12)),
    ),
  ].sort();
}

/** The workflow's DeployOutcome search attribute. */
async function outcomeOf(workflowId: string): Promise<unknown> {
  return (await bed.env.client.workflow.getHandle(workflowId).describe()).searchAttributes.DeployOutcome;
}

async function recordOf(siteId: string) {
  return (await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery)).record;
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause as ApplicationFailure;
}

function expectAllOn(hosts: Record<string, { live?: string; standby: boolean }>, release: string) {
  expect(Object.values(hosts)).toEqual(placement.appHosts.map(() => ({ live: release, standby: false })));
}

test('provisioning made the repository: bare, with the hook, its secret root-only; ensureGitRepo again changes nothing', async () => {
  // site A's provision created it, site B (same repository, another branch) found it
  expect(provisioned[0]!.git).toMatchObject({
    repository: 'created',
    hook: 'installed',
    path: `/srv/git/${repo}`,
  });
  expect(provisioned[1]!.git).toMatchObject({ repository: 'existing', hook: 'unchanged' });
  expect(await gitRepoOnHost(bed.fleet, repo)).toEqual({
    exists: true,
    createdBy: siteA.siteId,
    hookLink: '/srv/qm/git/post-receive',
    hasRefs: false,
  });
  const git = makeGitActivities(bed.fleet, { url: deploy.hookUrl, secret: deploy.secret });
  const first = await git.ensureGitRepo({ repo });
  expect(first).toMatchObject({ repository: 'existing', hook: 'unchanged', path: `/srv/git/${repo}` });
  const gitHost = first.host;
  const mode = await bed.fleet.pool.exec(gitHost, ['stat', '-c', '%a %U', '/srv/qm/git/hook.secret']);
  expect(mode.stdout.trim()).toBe('600 root');
  const hook = await bed.fleet.pool.exec(gitHost, ['readlink', `/srv/git/${repo}/hooks/post-receive`]);
  expect(hook.stdout.trim()).toBe('/srv/qm/git/post-receive');
});

test('a push deploys to every app server of the sites on that branch, with no failed request; the site on another branch is untouched', async () => {
  const poller = pollSite(bed.fleet, siteA.domains![0]!);
  const { commit, stderr } = await clone.push('main', { VERSION: 'v1\n', 'index.txt': 'hello\n' }, 'v1');
  commits.push(commit);
  // the hook told the pusher what it started
  expect(stderr).toContain(`qm: deploying ${commit.slice(0, 12)} to ${siteA.siteId}`);
  const handle = bed.env.client.workflow.getHandle(deployWorkflowId(siteA.siteId, commit));
  const result = await handle.result();
  const seen = await poller.stop();
  snapshotted.push(commit);

  expect(result).toMatchObject({
    status: 'deployed',
    release: commit,
    previous: 'initial',
    triggeredBy: 'push:root',
  });
  // the snapshot taken before it migrated is on the DB host, named after the release
  expect(result.snapshot).toMatch(new RegExp(`^deploy-${commit.slice(0, 12)}-[0-9a-f]{8}$`));
  expect(await snapshotReleases(siteA.siteId)).toEqual([commit.slice(0, 12)]);
  expect(result.trigger).toMatchObject({ kind: 'push', push: { repo, branch: 'main', pusher: 'root' } });
  expect(seen.failed).toEqual([]);
  expect(seen.ok).toBeGreaterThan(10);
  expect([...seen.releases].every((r) => ['initial', commit].includes(r))).toBe(true);

  // every app server runs it, nothing else is left running, the proxy routes to the live port
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), commit);
  expect(await routePorts(siteA.siteId)).toEqual(placement.appHosts.map(() => placement.port));
  // through the proxy: the release's own files, from both app servers
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('v1\n');
  const pages = new Set<string>();
  for (let n = 0; n < 8; n++) {
    const r = await fetchSite(bed.fleet, siteA.domains![0]!);
    expect(r.bodyExcerpt).toContain(`release ${commit}`);
    pages.add(r.bodyExcerpt);
  }
  expect(pages.size).toBe(2);
  expect((await recordOf(siteA.siteId)).release).toBe(commit);
  // the postDeploy hook ran (once, in one app container)
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/files/.last-deploy-hook')).status).toBe(200);

  // what ops see: per-server progress, the release and the trigger as search attributes and memo
  const progress = await handle.query(progressQuery);
  expect(progress.step).toBe('done');
  for (const h of placement.appHosts) expect(progress.hosts[h]).toBe(`live on ${commit.slice(0, 12)}`);
  const d = await handle.describe();
  expect(d.searchAttributes.Release).toEqual([commit]);
  expect(d.searchAttributes.TriggeredBy).toEqual(['push:root']);
  expect(d.searchAttributes.DeployOutcome).toEqual(['deployed']);
  expect(d.searchAttributes.Hosts).toEqual(expect.arrayContaining(placement.appHosts));
  expect((d.memo as { trigger: { kind: string } }).trigger.kind).toBe('push');

  // site B tracks another branch of the same repository: no deploy, still on its first release
  await expect(
    bed.env.client.workflow.getHandle(deployWorkflowId(siteB.siteId, commit)).describe(),
  ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  expect((await recordOf(siteB.siteId)).release).toBe('initial');
  expect((await fetchSite(bed.fleet, siteB.domains![0]!)).bodyExcerpt).toContain('release initial');

  await recordHistory(handle.workflowId, 'deployRelease');
});

test('one app server failing its health check: every server stays on (or returns to) the old release, with no failed request', async () => {
  const { commit } = await clone.push('feature', { VERSION: 'v2\n' }, 'v2');
  commits.push(commit);
  snapshotted.push(commit);
  const [, sick] = placement.appHosts;
  // the proxy host cannot reach the standby port of one app server (a firewall rule gone wrong)
  const rule = ['-p', 'tcp', '--dport', String(placement.port + 20000), '-j', 'DROP'];
  testbed.exec(sick!, ['iptables', '-t', 'raw', '-I', 'PREROUTING', ...rule]);
  const poller = pollSite(bed.fleet, siteA.domains![0]!);
  try {
    const failure = await failureOf(
      bed.env.client.workflow.execute(deployRelease, {
        taskQueue: deploy.taskQueue,
        workflowId: `deploy-sick-${siteA.siteId}`,
        args: [
          { siteId: siteA.siteId, commit, triggeredBy: 'ops:test', drainSeconds: 1, healthTimeoutSeconds: 4 },
        ],
      }),
    );
    expect(failure.type).toBe('DeployFailed');
    expect(failure.message).toContain(`every app server is back on ${commits[0]!.slice(0, 12)}`);
    expect(await outcomeOf(`deploy-sick-${siteA.siteId}`)).toEqual(['failed']);
    expect(failure.details?.[0]).toMatchObject({
      failedHost: sick,
      rolledBack: true,
      databaseRestored: false,
    });
  } finally {
    testbed.exec(sick!, ['iptables', '-t', 'raw', '-D', 'PREROUTING', ...rule]);
  }
  const seen = await poller.stop();
  expect(seen.failed).toEqual([]);
  expect([...seen.releases]).toEqual([commits[0]]);
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), commits[0]!);
  expect(await routePorts(siteA.siteId)).toEqual(placement.appHosts.map(() => placement.port));
  expect((await recordOf(siteA.siteId)).release).toBe(commits[0]);
});

test('deploy a chosen ref from the API/UI, then roll back to the kept release in one switch', async () => {
  const deployed = await bed.env.client.workflow.execute(deployRelease, {
    taskQueue: deploy.taskQueue,
    workflowId: `deploy-ref-${siteA.siteId}`,
    args: [{ siteId: siteA.siteId, ref: 'feature', triggeredBy: 'api:test', drainSeconds: 1 }],
  });
  expect(deployed).toMatchObject({
    status: 'deployed',
    release: commits[1],
    trigger: { kind: 'request', ref: 'feature' },
  });
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('v2\n');
  expect(deployed.kept).toEqual([commits[1], commits[0]]);

  const poller = pollSite(bed.fleet, siteA.domains![0]!);
  const rollbackId = `rollback-${siteA.siteId}`;
  const rolled = await bed.env.client.workflow.execute(rollbackSite, {
    taskQueue: deploy.taskQueue,
    workflowId: rollbackId,
    args: [
      {
        siteId: siteA.siteId,
        release: commits[0]!,
        triggeredBy: 'ops:test',
        reason: 'v2 is slow',
        drainSeconds: 1,
      },
    ],
  });
  const seen = await poller.stop();
  expect(rolled).toMatchObject({ status: 'rolled-back', release: commits[0], previous: commits[1] });
  expect(seen.failed).toEqual([]);
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('v1\n');
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), commits[0]!);
  expect((await recordOf(siteA.siteId)).release).toBe(commits[0]);
  await recordHistory(rollbackId, 'rollbackSite');

  // a release that is not kept is refused before anything changes
  const refused = await failureOf(
    bed.env.client.workflow.execute(rollbackSite, {
      taskQueue: deploy.taskQueue,
      workflowId: `rollback-unkept-${siteA.siteId}`,
      args: [{ siteId: siteA.siteId, release: 'f'.repeat(40) }],
    }),
  );
  expect(refused.type).toBe('Conflict');
});

test('5 pushes in a row (while the first deploys): at most 2 deploys, the others superseded, the last commit live', async () => {
  // back to back, as fast as the Git server takes them: all land while the first deploy runs
  const pushed: string[] = [];
  for (let n = 1; n <= 5; n++)
    pushed.push((await clone.push('main', { VERSION: `storm ${n}\n` }, `storm ${n}`)).commit);
  const results = await Promise.all(
    pushed.map((c) => bed.env.client.workflow.getHandle(deployWorkflowId(siteA.siteId, c)).result()),
  );
  const statuses = results.map((r) => r.status);
  expect(statuses.filter((s) => s === 'deployed').length).toBeLessThanOrEqual(2);
  expect(statuses[4]).toBe('deployed');
  snapshotted.push(...pushed.filter((_, n) => statuses[n] === 'deployed'));
  // the outcome shows in the Web UI's list: each deploy's DeployOutcome is its status, and the
  // query in docs/deploys.md lists exactly the superseded ones
  const ids = pushed.map((c) => deployWorkflowId(siteA.siteId, c));
  for (const [n, id] of ids.entries()) expect(await outcomeOf(id)).toEqual([statuses[n]]);
  const superseded = ids.filter((_, n) => statuses[n] === 'superseded').sort();
  expect(superseded.length).toBeGreaterThanOrEqual(3);
  await eventually(
    async () => {
      const listed: string[] = [];
      for await (const w of bed.env.client.workflow.list({
        query: `Operation = 'deploy' AND DeployOutcome = 'superseded'`,
      }))
        if (ids.includes(w.workflowId)) listed.push(w.workflowId);
      if (listed.sort().join() !== superseded.join()) throw new Error(`listed ${listed.join(', ')}`);
      return true;
    },
    { what: 'visibility to list the superseded deploys', retryErrors: true },
  );
  // a superseded deploy names the newer push that was the branch's head when its turn came (the
  // last one, unless a loaded machine let a deploy finish before the storm had all landed)
  results.forEach((r, n) => {
    if (r.status === 'superseded') expect(pushed.indexOf(r.supersededBy!)).toBeGreaterThan(n);
  });
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('storm 5\n');
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), pushed[4]!);
  commits.push(pushed[4]!);
  // the same notification again (a hook retrying after a lost answer): nothing new starts
  const body = JSON.stringify({
    repo,
    ref: 'refs/heads/main',
    before: pushed[3],
    after: pushed[4],
    pusher: 'root',
  });
  const path = new URL(deploy.hookUrl).pathname;
  const again = await fetch(deploy.hookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      ...sign(deploy.secret, { method: 'POST', path, body }),
    },
    body,
  });
  expect(again.status).toBe(200);
  expect(((await again.json()) as { deploys: unknown[] }).deploys).toEqual([
    { siteId: siteA.siteId, workflowId: deployWorkflowId(siteA.siteId, pushed[4]!), status: 'duplicate' },
  ]);
  // and a forged one is refused
  const forged = await fetch(deploy.hookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...sign('not-the-secret', { method: 'POST', path, body }),
    },
    body,
  });
  expect(forged.status).toBe(401);
});

test('a failing postDeploy hook: the database goes back to the snapshot and every server to the old release', async () => {
  const { commit } = await clone.push(
    'main',
    { '.fail-post-deploy': 'yes\n', VERSION: 'broken\n' },
    'broken',
  );
  snapshotted.push(commit);
  const failure = await failureOf(
    bed.env.client.workflow.getHandle(deployWorkflowId(siteA.siteId, commit)).result(),
  );
  expect(failure.type).toBe('DeployFailed');
  expect(failure.message).toContain('postDeploy fails on purpose');
  expect(failure.details?.[0]).toMatchObject({
    failedStep: 'postDeploy hooks',
    rolledBack: true,
    databaseRestored: true,
  });
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), commits[2]!);
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('storm 5\n');
  expect((await recordOf(siteA.siteId)).release).toBe(commits[2]);
  expect(await routePorts(siteA.siteId)).toEqual(placement.appHosts.map(() => placement.port));
});

test('SIGKILL the worker mid-switch, start a new one: the deploy completes, every server on the new release', async () => {
  // site A's workflows move to the real worker process (same task queue), which the test kills
  await deploy.stopWorker();
  worker = await startWorkerProcess(deploy.taskQueue);
  const { commit } = await clone.push('crash', { VERSION: 'crash\n', '.fail-post-deploy': null }, 'crash');
  const handle = await bed.env.client.workflow.start(deployRelease, {
    taskQueue: deploy.taskQueue,
    workflowId: `deploy-crash-${siteA.siteId}`,
    args: [{ siteId: siteA.siteId, commit, triggeredBy: 'ops:test', drainSeconds: 2 }],
  });
  await eventually(
    async () => {
      const progress = await handle.query(progressQuery);
      if (
        progress.step !== 'switch app servers' ||
        !Object.values(progress.hosts).some((s) => /standby/.test(s))
      )
        throw new Error(JSON.stringify(progress));
      return true;
    },
    { what: 'the deploy to reach the switch', timeoutMs: 90_000, intervalMs: 50, retryErrors: true },
  );
  await killWorker(worker, 'SIGKILL');
  worker = await startWorkerProcess(deploy.taskQueue);
  const result = await handle.result();
  expect(result.status).toBe('deployed');
  expectAllOn(await onHosts(siteA.siteId, placement.appHosts), commit);
  expect(await routePorts(siteA.siteId)).toEqual(placement.appHosts.map(() => placement.port));
  expect((await fetchSite(bed.fleet, siteA.domains![0]!, '/release/VERSION')).bodyExcerpt).toBe('crash\n');
  expect((await recordOf(siteA.siteId)).release).toBe(commit);
  // the deploy snapshots went with their releases: those of the releases still kept are there,
  // every other one is gone (this file deployed more releases than a site keeps)
  snapshotted.push(commit);
  const kept = result.kept!.map((k) => k.slice(0, 12));
  const tried = [...new Set(snapshotted.map((c) => c.slice(0, 12)))];
  expect(tried.filter((c) => !kept.includes(c)).length).toBeGreaterThan(0);
  expect(await snapshotReleases(siteA.siteId)).toEqual(tried.filter((c) => kept.includes(c)).sort());
});
