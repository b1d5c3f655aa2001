import { progressQuery } from '../../protocol/operations';
import { deprovisionSite, provisionSite } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import {
  fetchSite,
  gitRepoOnHost,
  removeGitRepoOnHost,
  siteContainers,
  siteLeftovers,
  testSite,
} from '../support/site';
import { uniqueTaskQueue } from '../support/temporal';
import { killWorker, startWorkerProcess } from '../support/workerProcess';

let bed: Bed;
beforeAll(async () => {
  bed = await openBed();
});
afterAll(() => bed?.close());

test('SIGKILL the worker mid-provision, start a new one: the site completes, no duplicate container or database', async () => {
  const site = testSite();
  const taskQueue = uniqueTaskQueue('crash');
  let worker = await startWorkerProcess(taskQueue);
  try {
    const handle = await bed.env.client.workflow.start(provisionSite, {
      taskQueue,
      workflowId: `provision-${site.siteId}`,
      args: [{ site }],
    });
    // wait until it is creating containers, then kill the worker without warning
    await eventually(
      async () => {
        const p = await handle.query(progressQuery);
        if (!['cache', 'app containers', 'cron'].includes(p.step)) throw new Error(JSON.stringify(p));
        return true;
      },
      {
        what: 'the provision to reach the container steps',
        timeoutMs: 90_000,
        intervalMs: 100,
        retryErrors: true,
      },
    );
    await killWorker(worker, 'SIGKILL');
    worker = await startWorkerProcess(taskQueue);

    const result = await handle.result();
    expect(result.alreadyProvisioned).toBe(false);
    expect((await fetchSite(bed.fleet, site.domains![0]!)).status).toBe(200);
    // exactly one app container per app server, one cache, one cron; one database
    const containers = await siteContainers(bed.fleet, site.siteId);
    expect(containers.filter((c) => /-app \(running\)$/.test(c))).toHaveLength(2);
    expect(containers).toHaveLength(4);
    const dbs = await bed.fleet.pool.exec(result.placement.dbHost, [
      'mariadb',
      '--batch',
      '--skip-column-names',
      '-e',
      `SHOW DATABASES LIKE 'site\\_${site.siteId.replace(/-/g, '\\_')}'`,
    ]);
    expect(dbs.stdout.trim().split('\n')).toHaveLength(1);

    await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: `deprovision-${site.siteId}`,
      args: [{ siteId: site.siteId, skipFinalBackup: true }],
    });
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    // one repository, made once (by whichever attempt), kept by the deprovision
    expect(await gitRepoOnHost(bed.fleet, site.git!.repo)).toMatchObject({
      exists: true,
      createdBy: site.siteId,
    });
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  } finally {
    await killWorker(worker, 'SIGTERM');
  }
});
