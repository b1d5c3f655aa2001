import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { createActivities, type Activities } from '../../activities';
import { timeOfFinalBackup } from '../../protocol/ids';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { siteNames } from '../../schema/site';
import { deprovisionSite, provisionSite, resumeSite, suspendSite } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import {
  fetchSite,
  gitRepoOnHost,
  removeGitRepoOnHost,
  siteContainers,
  siteLeftovers,
  testSite,
} from '../support/site';
import { ensureRepoArgv } from '../../activities/git/commands';
import { recordHistory } from '../support/histories';
import { withWorker } from '../support/temporal';

/**
 * The site lifecycle end to end on the real bed: provision (2 app servers behind the real nginx
 * proxy, MariaDB, sshfs-shared files), suspend/resume, deprovision, and the saga's undo when any
 * step fails. Outcomes are checked on the hosts themselves (test/support/site.ts).
 */

let bed: Bed;
beforeAll(async () => {
  bed = await openBed();
});
afterAll(() => bed?.close());

const id = (prefix: string) => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

test('provision → serves through the proxy from both app servers → suspend → resume → deprovision leaves nothing', async () => {
  const site = testSite();
  const ids = {
    provisionSite: id(`provision-${site.siteId}`),
    suspendSite: id(`suspend-${site.siteId}`),
    resumeSite: id(`resume-${site.siteId}`),
    deprovisionSite: id(`deprovision-${site.siteId}`),
    site: siteWorkflowId(site.siteId),
  };
  await withWorker(bed, async (taskQueue) => {
    const result = await bed.env.client.workflow.execute(provisionSite, {
      taskQueue,
      workflowId: ids.provisionSite,
      args: [{ site, triggeredBy: 'test' }],
    });
    expect(result.alreadyProvisioned).toBe(false);
    expect(result.placement.appHosts).toHaveLength(2);
    expect(new Set(result.placement.appHosts).size).toBe(2);
    // the site's repository on the git host: bare, made by this provision, linked to the hook
    // (this worker has no webhook configured, and says so)
    expect(result.git).toMatchObject({ repo: site.git!.repo, repository: 'created', hook: 'not-configured' });
    expect(await gitRepoOnHost(bed.fleet, site.git!.repo)).toEqual({
      exists: true,
      createdBy: site.siteId,
      hookLink: '/srv/qm/git/post-receive',
      hasRefs: false,
    });

    // Through the real proxy: the site's page, from both app servers (round robin).
    const bodies = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = await fetchSite(bed.fleet, site.domains![0]!);
      expect(r.status).toBe(200);
      expect(r.bodyExcerpt).toContain(`site ${site.siteId} release initial`);
      bodies.add(r.bodyExcerpt);
    }
    expect(bodies.size).toBe(2); // two containers, two hostnames in the page

    // The shared files: what one app server writes, the other serves (sshfs to the storage host).
    const [a, b] = result.placement.appHosts;
    await bed.fleet.pool.exec(a!, [
      'sh',
      '-c',
      'echo shared-ok > "$1"',
      'qm',
      `/srv/qm/sites/${site.siteId}/files/probe.txt`,
    ]);
    const shared = await bed.fleet.pool.exec(b!, ['cat', `/srv/qm/sites/${site.siteId}/files/probe.txt`]);
    expect(shared.stdout.trim()).toBe('shared-ok');

    // The platform knows the site: its own workflow holds the record.
    const view = await bed.env.client.workflow.getHandle(siteWorkflowId(site.siteId)).query(siteQuery);
    expect(view.record.state).toBe('active');
    expect(view.record.placement).toEqual(result.placement);

    const containersBefore = await siteContainers(bed.fleet, site.siteId);
    await bed.env.client.workflow.execute(suspendSite, {
      taskQueue,
      workflowId: ids.suspendSite,
      args: [{ siteId: site.siteId, reason: 'invoice 42 unpaid' }],
    });
    const suspended = await fetchSite(bed.fleet, site.domains![0]!);
    // the bed's proxy host is also its Git and storage host: the page is readable whatever step made /srv/qm
    expect(suspended.status).toBe(503);
    expect(suspended.siteState).toBe('suspended');
    expect(Number(suspended.retryAfter)).toBeGreaterThan(0);
    expect((await siteContainers(bed.fleet, site.siteId)).every((c) => c.endsWith('(exited)'))).toBe(true);

    await bed.env.client.workflow.execute(resumeSite, {
      taskQueue,
      workflowId: ids.resumeSite,
      args: [{ siteId: site.siteId }],
    });
    const resumed = await fetchSite(bed.fleet, site.domains![0]!);
    expect(resumed.status).toBe(200);
    // exactly as it was: the same containers (now running), and the data is still there
    expect((await siteContainers(bed.fleet, site.siteId)).map((c) => c.replace(/ \(.*\)$/, ''))).toEqual(
      containersBefore.map((c) => c.replace(/ \(.*\)$/, '')),
    );
    const file = await fetchSite(bed.fleet, site.domains![0]!, '/files/probe.txt');
    expect(file.bodyExcerpt.trim()).toBe('shared-ok');

    const gone = await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: ids.deprovisionSite,
      args: [{ siteId: site.siteId }],
    });
    // the site's own workflow ends once the site is deleted
    await bed.env.client.workflow.getHandle(ids.site).result();
    for (const [name, workflowId] of Object.entries(ids)) await recordHistory(workflowId, name);
    expect(gone.state).toBe('deleted');
    // the final backup: where (docs/sites.md names both places) and until when
    const { dbHost, storageHost } = result.placement;
    const name = /final-\d{14}/.exec(gone.finalBackup!.databaseSnapshot)![0];
    expect(gone.finalBackup).toEqual({
      databaseSnapshot: `${dbHost}:/srv/qm/snapshots/${siteNames(site.siteId).database}/${name}.sql.gz`,
      filesArchive: `${storageHost}:/srv/qm/archive/${site.siteId}/${name}.tar.gz`,
      keptUntil: new Date(timeOfFinalBackup(name)!.getTime() + 30 * 86_400_000).toISOString(),
    });
    for (const [host, path] of [gone.finalBackup!.databaseSnapshot, gone.finalBackup!.filesArchive].map((w) =>
      w.split(':'),
    ))
      expect((await bed.fleet.pool.exec(host!, ['test', '-s', path!], { check: false })).code).toBe(0);
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    // deprovisioning keeps the customer's repository, and says where
    expect(gone.keptRepository).toEqual({
      repo: site.git!.repo,
      host: bed.fleet.hosts.find((h) => h.roles.includes('git'))!.name,
    });
    expect((await gitRepoOnHost(bed.fleet, site.git!.repo)).exists).toBe(true);
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
    expect((await fetchSite(bed.fleet, site.domains![0]!)).status).toBe(404);
  });
});

test('the same site provisioned twice at once → one site', async () => {
  const site = testSite({ appServers: 1 });
  await withWorker(bed, async (taskQueue) => {
    const runs = await Promise.all(
      [1, 2].map((n) =>
        bed.env.client.workflow.execute(provisionSite, {
          taskQueue,
          workflowId: id(`provision-${site.siteId}-${n}`),
          args: [{ site }],
        }),
      ),
    );
    expect(runs.map((r) => r.alreadyProvisioned).sort()).toEqual([false, true]);
    const containers = await siteContainers(bed.fleet, site.siteId);
    expect(containers.filter((c) => c.includes('-app'))).toHaveLength(1);
    await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: id(`deprovision-${site.siteId}`),
      args: [{ siteId: site.siteId, skipFinalBackup: true }],
    });
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  });
});

test('a bad spec fails at once with the field named, and creates nothing', async () => {
  const site = { ...testSite(), siteId: 'Bad;Id$(touch /tmp/pwned)', appServers: 99 };
  await withWorker(bed, async (taskQueue) => {
    const failure = await failureOf(
      bed.env.client.workflow.execute(provisionSite, {
        taskQueue,
        workflowId: id('provision-bad'),
        args: [{ site }],
      }),
    );
    expect(failure.type).toBe('InvalidInput');
    expect(failure.message).toContain('site.siteId');
    expect(failure.message).toContain('site.appServers');
  });
  for (const h of bed.fleet.hosts) {
    const r = await bed.fleet.pool.exec(h.name, ['test', '-e', '/tmp/pwned'], { check: false });
    expect(r.code).toBe(1);
  }
});

/** Each step in turn fails (after doing its real work, so it is half-done): nothing is left behind. */
const injectionPoints: { step: string; activity: keyof Activities; when?: (input: never) => boolean }[] = [
  { step: 'place', activity: 'placeSite' },
  { step: 'git repository', activity: 'ensureGitRepo' },
  { step: 'database', activity: 'ensureSiteDatabase' },
  { step: 'files storage', activity: 'mountSiteFiles' },
  { step: 'cache', activity: 'ensureSiteContainer', when: (i: { role: string }) => i.role === 'cache' },
  {
    step: 'app containers',
    activity: 'ensureSiteContainer',
    when: (i: { role: string }) => i.role === 'app',
  },
  { step: 'cron', activity: 'ensureSiteContainer', when: (i: { role: string }) => i.role === 'cron' },
  { step: 'routes', activity: 'putSiteRoute' },
  { step: 'health check through the proxy', activity: 'checkSiteHealth' },
];

test.each(injectionPoints)(
  'a failure at "$step" undoes every step and leaves nothing behind',
  async (point) => {
    const site = testSite();
    const real = createActivities(bed.fleet); // the real activities, for the injected ones to call through to
    const override = {
      [point.activity]: async (input: never) => {
        const result = await (real[point.activity] as (i: never) => Promise<unknown>)(input);
        if (!point.when || point.when(input))
          throw ApplicationFailure.nonRetryable(`injected failure in ${point.activity}`, 'Injected');
        return result;
      },
    } as Partial<Activities>;
    await withWorker(
      bed,
      async (taskQueue) => {
        const failure = await failureOf(
          bed.env.client.workflow.execute(provisionSite, {
            taskQueue,
            workflowId: id(`provision-${site.siteId}`),
            args: [{ site }],
          }),
        );
        expect(failure.type).toBe('ProvisionFailed');
        expect(failure.message).toContain(`failed at "${point.step}"`);
        expect(failure.message).toContain('injected failure');
        expect(failure.message).toContain('everything it had created was removed');
        const view = await bed.env.client.workflow.getHandle(siteWorkflowId(site.siteId)).query(siteQuery);
        expect(view.record.state).toBe('new');
      },
      { overrides: override },
    );
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    // the repository this provision made (and nobody pushed to) went with the rest
    expect(await gitRepoOnHost(bed.fleet, site.git!.repo)).toEqual({ exists: false });
  },
);

test('a failed provision keeps a repository it did not create, and one holding commits', async () => {
  const theirs = testSite({ appServers: 1 });
  const pushed = testSite({ appServers: 1 });
  const gitHost = bed.fleet.hosts.find((h) => h.roles.includes('git'))!.name;
  const override = {
    putSiteRoute: async () => {
      throw ApplicationFailure.nonRetryable('injected failure in putSiteRoute', 'Injected');
    },
  } as Partial<Activities>;
  try {
    // another site's repository; and one this site made earlier, since pushed to
    await bed.fleet.pool.exec(gitHost, ensureRepoArgv(theirs.git!.repo, 'some-other-site'));
    await bed.fleet.pool.exec(gitHost, ensureRepoArgv(pushed.git!.repo, pushed.siteId));
    await bed.fleet.pool.exec(gitHost, [
      'sh',
      '-c',
      'export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t; c=$(git -C "$1" commit-tree "$(git -C "$1" mktree </dev/null)" -m first) && git -C "$1" update-ref refs/heads/main "$c"',
      'qm',
      `/srv/git/${pushed.git!.repo}`,
    ]);
    await withWorker(
      bed,
      async (taskQueue) => {
        for (const site of [theirs, pushed]) {
          const failure = await failureOf(
            bed.env.client.workflow.execute(provisionSite, {
              taskQueue,
              workflowId: id(`provision-${site.siteId}`),
              args: [{ site }],
            }),
          );
          expect(failure.message).toContain('everything it had created was removed');
        }
      },
      { overrides: override },
    );
    for (const site of [theirs, pushed]) expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    expect(await gitRepoOnHost(bed.fleet, theirs.git!.repo)).toMatchObject({
      exists: true,
      createdBy: 'some-other-site',
    });
    expect(await gitRepoOnHost(bed.fleet, pushed.git!.repo)).toMatchObject({ exists: true, hasRefs: true });
  } finally {
    for (const site of [theirs, pushed]) await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  }
});
