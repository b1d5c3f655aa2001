import { execFile } from 'node:child_process';
import path from 'node:path';
import { OperationResponse, OperationStarted, SiteResponse } from '../../api/responses';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { fetchSite, siteLeftovers, testSite } from '../support/site';
import { request, startApi, uniqueSiteId, withApiWorker, type Api } from './harness';

/**
 * A site's life through the billing API, against the real worker (workers/worker.ts, encrypted
 * payloads) and the real bed: create → it serves through the proxy; suspend (sent while the
 * provision still holds the site: queued) → the suspended page; resume → serves again; cancel →
 * nothing left on any host. `qm` follows the provision from its own process meanwhile.
 */

const ROOT = path.resolve(__dirname, '..', '..');
let bed: Bed;
let api: Api;
beforeAll(async () => {
  bed = await openBed();
  api = await startApi(bed.env);
});
afterAll(async () => {
  await api?.close();
  await bed?.close();
});

/** Run `qm` (the package's bin) as ops would, with the API's Temporal, task queue and codec key. */
function qm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'cli/qm.cjs'), ...args],
      {
        cwd: '/tmp', // the bin works from anywhere
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS,
          QM_TASK_QUEUE: api.taskQueue,
          QM_CODEC_KEY: api.codecKey,
        },
        timeout: 180_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let keySeq = 0;
async function send(method: string, p: string, body?: unknown) {
  return request(api, { method, path: p, body, idempotencyKey: `e2e-${++keySeq}` });
}

/** Poll the operation through the API until it ends; the running views seen on the way. */
async function untilDone(id: string) {
  const seen: ReturnType<typeof OperationResponse.parse>[] = [];
  const end = await eventually(
    async () => {
      const r = await request(api, { path: `/v1/operations/${id}` });
      expect(r.status).toBe(200);
      const view = OperationResponse.parse(r.json);
      if (view.state === 'RUNNING') {
        seen.push(view);
        return undefined;
      }
      return view;
    },
    { what: `operation ${id}`, timeoutMs: 150_000 },
  );
  return { end, seen };
}

test('create → serves → suspend (queued) → resume → cancel → nothing left', async () => {
  const site = testSite({ siteId: uniqueSiteId('e2e'), appServers: 2 });
  const domain = site.domains![0]!;
  let provisioned = false;
  let deleted = false;
  await withApiWorker(bed, api, async () => {
    try {
      const created = await send('POST', '/v1/sites', { site });
      expect(created.status).toBe(202);
      const provision = OperationStarted.parse(created.json);
      const following = qm('op', provision.operationId, '--follow');

      // Sent while the provision holds the site's lock: started, and waits its turn.
      await eventually(
        async () => {
          const r = await request(api, { path: `/v1/sites/${site.siteId}` });
          return r.status === 200 && SiteResponse.parse(r.json).holder?.workflowId === provision.operationId
            ? true
            : undefined;
        },
        { what: 'the provision to hold the site lock' },
      );
      const suspendReq = await send('POST', `/v1/sites/${site.siteId}/suspend`, {
        reason: 'invoice 42 unpaid',
      });
      expect(suspendReq.status).toBe(202);
      const suspend = OperationStarted.parse(suspendReq.json);
      expect(suspend).toMatchObject({ queued: true, behind: provision.operationId });
      await eventually(
        async () => {
          const r = OperationResponse.parse(
            (await request(api, { path: `/v1/operations/${suspend.operationId}` })).json,
          );
          return r.queued && r.progress?.waitingForLock ? true : undefined;
        },
        { what: 'the suspend to show it waits for the lock' },
      );

      const { end, seen } = await untilDone(provision.operationId);
      expect(end).toMatchObject({ state: 'COMPLETED', result: { siteId: site.siteId, state: 'active' } });
      provisioned = true;
      // the same create again (billing retrying), once the workflow has updated its memo: the same operation
      const retried = await request(api, {
        method: 'POST',
        path: '/v1/sites',
        body: { site },
        idempotencyKey: provision.operationId.split(':')[2],
      });
      expect(retried.status).toBe(200);
      expect(retried.json).toMatchObject({
        operationId: provision.operationId,
        created: false,
        state: 'COMPLETED',
      });
      expect(
        seen.some((v) => v.progress && !v.progress.waitingForLock && v.progress.step !== 'starting'),
      ).toBe(true);

      // qm followed it from its own process: steps, hosts, and exit 0 at the end
      const cli = await following;
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      expect(cli.stdout).toMatch(/step \d+: database/);
      expect(cli.stdout).toMatch(/COMPLETED/);

      // then the queued suspend ran: the suspended page
      expect((await untilDone(suspend.operationId)).end.state).toBe('COMPLETED');
      const suspended = await fetchSite(bed.fleet, domain);
      expect(suspended.status).toBe(503);
      expect(suspended.siteState).toBe('suspended');

      const resume = OperationStarted.parse((await send('POST', `/v1/sites/${site.siteId}/resume`)).json);
      expect((await untilDone(resume.operationId)).end.state).toBe('COMPLETED');
      const served = await fetchSite(bed.fleet, domain);
      expect(served.status).toBe(200);
      expect(served.bodyExcerpt).toContain(`site ${site.siteId}`);

      const record = SiteResponse.parse((await request(api, { path: `/v1/sites/${site.siteId}` })).json);
      expect(record.record).toMatchObject({ state: 'active', spec: { domains: [domain] } });
      const status = await qm('status', site.siteId);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`site ${site.siteId}: active`);

      // the site workflow's history holds the spec (signalled to it) only encrypted
      const history = await api.rawClient.workflow.getHandle(`site:${site.siteId}`).fetchHistory();
      const bytes: Buffer[] = [];
      const walk = (v: unknown): void => {
        if (v instanceof Uint8Array) bytes.push(Buffer.from(v));
        else if (v && typeof v === 'object') Object.values(v).forEach(walk);
      };
      walk(history);
      expect(Buffer.concat(bytes).includes(domain)).toBe(false);

      const cancelled = await send('DELETE', `/v1/sites/${site.siteId}`);
      expect(cancelled.status).toBe(202);
      const cancel = OperationStarted.parse(cancelled.json);
      expect((await untilDone(cancel.operationId)).end).toMatchObject({
        state: 'COMPLETED',
        result: { state: 'deleted' },
      });
      deleted = true;
      expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
      expect((await fetchSite(bed.fleet, domain)).status).toBe(404);

      // gone from the platform: a suspend is refused, nothing starts
      const late = await send('POST', `/v1/sites/${site.siteId}/suspend`, {});
      expect(late.status).toBe(404);
    } finally {
      if (provisioned && !deleted) {
        // leave the bed clean for the next test, whatever failed above
        const r = await request(api, {
          method: 'DELETE',
          path: `/v1/sites/${site.siteId}`,
          idempotencyKey: 'cleanup',
        });
        if (r.status === 202 || r.status === 200)
          await untilDone(r.json.operationId as string).catch(() => undefined);
      }
    }
  });
}, 300_000);
