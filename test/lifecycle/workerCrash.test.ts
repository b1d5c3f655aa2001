import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Fleet } from '../../activities/fleet';
import { progressQuery } from '../../protocol/operations';
import { deprovisionSite, provisionSite } from '../../workflows';
import { openTestFleet } from '../support/fleet';
import {
  fetchSite,
  gitRepoOnHost,
  removeGitRepoOnHost,
  siteContainers,
  siteLeftovers,
  testSite,
} from '../support/site';
import { testEnv, uniqueTaskQueue } from '../support/temporal';
import { killWorker, startWorkerProcess } from '../support/workerProcess';

let env: TestWorkflowEnvironment;
let fleet: Fleet;
beforeAll(async () => {
  env = await testEnv();
  fleet = openTestFleet();
});
afterAll(async () => {
  await fleet?.close();
  await env?.teardown();
});

test('SIGKILL the worker mid-provision, start a new one: the site completes, no duplicate container or database', async () => {
  const site = testSite();
  const taskQueue = uniqueTaskQueue('crash');
  let worker = await startWorkerProcess(taskQueue);
  try {
    const handle = await env.client.workflow.start(provisionSite, {
      taskQueue,
      workflowId: `provision-${site.siteId}`,
      args: [{ site }],
    });
    // wait until it is creating containers, then kill the worker without warning
    const deadline = Date.now() + 90_000;
    for (;;) {
      const p = await handle.query(progressQuery).catch(() => undefined);
      if (p && ['cache', 'app containers', 'cron'].includes(p.step)) break;
      if (Date.now() > deadline)
        throw new Error(`provision never reached the container steps: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await killWorker(worker, 'SIGKILL');
    worker = await startWorkerProcess(taskQueue);

    const result = await handle.result();
    expect(result.alreadyProvisioned).toBe(false);
    expect((await fetchSite(fleet, site.domains![0]!)).status).toBe(200);
    // exactly one app container per app server, one cache, one cron; one database
    const containers = await siteContainers(fleet, site.siteId);
    expect(containers.filter((c) => /-app \(running\)$/.test(c))).toHaveLength(2);
    expect(containers).toHaveLength(4);
    const dbs = await fleet.pool.exec(result.placement.dbHost, [
      'mariadb',
      '--batch',
      '--skip-column-names',
      '-e',
      `SHOW DATABASES LIKE 'site\\_${site.siteId.replace(/-/g, '\\_')}'`,
    ]);
    expect(dbs.stdout.trim().split('\n')).toHaveLength(1);

    await env.client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: `deprovision-${site.siteId}`,
      args: [{ siteId: site.siteId, skipFinalBackup: true }],
    });
    expect(await siteLeftovers(fleet, site.siteId)).toEqual([]);
    // one repository, made once (by whichever attempt), kept by the deprovision
    expect(await gitRepoOnHost(fleet, site.git!.repo)).toMatchObject({
      exists: true,
      createdBy: site.siteId,
    });
    await removeGitRepoOnHost(fleet, site.git!.repo);
  } finally {
    await killWorker(worker, 'SIGTERM');
  }
});
