import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../dev/temporal';
import { CLIENT_KEY, INVENTORY } from '../../dev/fleet';
import { siteWorkflowId } from '../../protocol/site';
import { deprovisionSite, provisionSite } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { fetchSite, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { buildApp, runWorker, type WorkerProcess } from './compiledWorker';
import { stackUp, type ProductionStack } from './productionStack';

/**
 * The production topology, run: `dev/stack.sh up` (the Temporal server built from its Go module at
 * docker-compose.yml's version, on a throwaway PostgreSQL 15, schema by deploy/temporal/schema.sh,
 * configuration from deploy/temporal/config.yaml, SQL visibility, 4 history shards), the worker
 * from the compiled build (`npm run build`), the bed's hosts. Needs the server cached (.ci/setup
 * builds it). About 90 s here.
 */

let stack: ProductionStack | undefined;
let app: ReturnType<typeof buildApp>;
let bed: Bed;
let conn: Connection | undefined;
let client: Client;
const workers: WorkerProcess[] = [];
const taskQueue = `prod-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  bed = await openBed({ temporal: false });
  app = buildApp();
  stack = await stackUp();
  conn = await Connection.connect({ address: stack.address });
  client = new Client({ connection: conn, namespace: stack.namespace });
  const w = runWorker(app.main, {
    TEMPORAL_ADDRESS: stack.address,
    TEMPORAL_NAMESPACE: stack.namespace,
    QM_TASK_QUEUE: taskQueue,
    QM_INVENTORY: INVENTORY,
    QM_SSH_KEY: CLIENT_KEY,
    QM_METRICS_PORT: String(await freePort()),
    QM_SDK_METRICS_PORT: String(await freePort()),
  });
  workers.push(w);
  await w.waitForLine((l) => l.includes('worker on task queue'));
}, 300_000);

afterAll(async () => {
  for (const w of workers)
    if (w.child.exitCode === null && w.child.signalCode === null) {
      w.child.kill('SIGKILL');
      await w.exited;
    }
  await conn?.close();
  stack?.down();
  app?.remove();
  await bed?.close();
}, 120_000);

test('the stack: PostgreSQL holds the cluster (4 history shards) and the namespace', () => {
  expect(stack!.sql('temporal', 'SELECT count(*) FROM shards').trim().split('\n')).toContain('4');
  expect(stack!.sql('temporal', 'SELECT name FROM namespaces').split('\n')).toContain(stack!.namespace);
});

test('checkFleet and a provision run on it; SiteId = … is answered by SQL visibility', async () => {
  const check = (await client.workflow.execute('checkFleet', {
    taskQueue,
    workflowId: `prod-check-${randomUUID()}`,
    args: [{}],
  })) as { healthy: string[] };
  expect(check.healthy.length).toBeGreaterThan(0);

  const site = testSite();
  const provisionId = `prod-provision-${site.siteId}`;
  try {
    const result = await client.workflow.execute(provisionSite, {
      taskQueue,
      workflowId: provisionId,
      args: [{ site, triggeredBy: 'test' }],
    });
    expect(result.alreadyProvisioned).toBe(false);
    const page = await fetchSite(bed.fleet, site.domains![0]!);
    expect(page.status).toBe(200);
    expect(page.bodyExcerpt).toContain(`site ${site.siteId}`);

    // the README's query, through the frontend, and the rows it reads in PostgreSQL
    const found = await eventually(
      async () => {
        const ids: string[] = [];
        for await (const wf of client.workflow.list({ query: `SiteId = "${site.siteId}"` }))
          ids.push(wf.workflowId);
        return ids.includes(provisionId) && ids.includes(siteWorkflowId(site.siteId)) && ids.sort();
      },
      { what: `SiteId = "${site.siteId}" listing the provision and the site's workflow`, timeoutMs: 30_000 },
    );
    expect(found).toEqual([provisionId, siteWorkflowId(site.siteId)].sort());
    const rows = stack!.sql(
      'temporal_visibility',
      `SELECT workflow_id FROM executions_visibility WHERE search_attributes::text LIKE '%"${site.siteId}"%' ORDER BY 1`,
    );
    expect(rows).toContain(provisionId);
    expect(rows).toContain(siteWorkflowId(site.siteId));
  } finally {
    await client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: `prod-deprovision-${site.siteId}`,
      args: [{ siteId: site.siteId }],
    });
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  }
  expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
}, 240_000);
