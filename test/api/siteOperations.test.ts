import { randomBytes } from 'node:crypto';
import { makeGitActivities } from '../../activities/git/activities';
import { makeReleaseActivities } from '../../activities/release/activities';
import { OperationResponse, OperationStarted, SiteResponse } from '../../api/responses';
import { GIT_HOOK_PATH } from '../../api/gitHook';
import { siteNames } from '../../schema/site';
import { deployWorkflowId } from '../../protocol/ids';
import { RETENTION } from '../../workflows/lib/retention';
import { bridgeAddress, Clone } from '../deploy/gitBed';
import { testbed } from '../../dev/fleet';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { fetchSite, siteLeftovers, testSite } from '../support/site';
import { request, startApi, uniqueSiteId, withApiWorker, type Api } from './harness';

/**
 * The operations billing runs on a live site, through the API on the real worker and bed, each
 * checked by what the hosts then hold: change the plan (the record), back up (the site's last good
 * backup), restore (a file written after the backup is gone again), a push deployed through the
 * API's own Git webhook (read back as an operation), deploy of a chosen ref, roll back.
 */

let bed: Bed;
let api: Api;
const hookSecret = randomBytes(32).toString('hex');
beforeAll(async () => {
  bed = await openBed();
  // on the bed's bridge, where the Git host's hook reaches the API
  api = await startApi(bed.env, { host: bridgeAddress(bed.fleet), gitHookSecret: hookSecret });
});
afterAll(async () => {
  await api?.close();
  await bed?.close();
});

let keySeq = 0;
async function started(method: string, p: string, body?: unknown) {
  const r = await request(api, { method, path: p, body, idempotencyKey: `ops-${++keySeq}` });
  expect(r.status).toBe(202);
  return OperationStarted.parse(r.json).operationId;
}

/** Poll the operation through the API until it ends. */
async function outcome(id: string) {
  return eventually(
    async () => {
      const r = await request(api, { path: `/v1/operations/${id}` });
      if (r.status === 404) return undefined; // a push deploy a moment before it starts
      expect(r.status).toBe(200);
      const view = OperationResponse.parse(r.json);
      return view.state === 'RUNNING' ? undefined : view;
    },
    { what: `operation ${id}`, timeoutMs: 180_000 },
  );
}

async function completed(id: string) {
  const view = await outcome(id);
  expect({ state: view.state, error: view.error }).toEqual({ state: 'COMPLETED', error: undefined });
  return view.result as Record<string, unknown>;
}

/** Every string and every byte string (payloads, as Temporal stores them) in a history, as text. */
function storedText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (v && typeof v === 'object') return Object.values(v).map(storedText).join('\n');
  return '';
}

async function siteRecord(siteId: string) {
  return SiteResponse.parse((await request(api, { path: `/v1/sites/${siteId}` })).json).record!;
}

test('change plan, backup, restore, a push and a chosen ref deployed, roll back: all through the API', async () => {
  const site = testSite({ siteId: uniqueSiteId('ops'), appServers: 1, plan: 'starter' });
  const domain = site.domains![0]!;
  const repo = site.git!.repo;
  const gitHook = { url: `${api.url}${GIT_HOOK_PATH}`, secret: hookSecret };
  let clone: Clone | undefined;
  let provisioned = false;
  await withApiWorker(
    bed,
    api,
    async () => {
      try {
        await completed(await started('POST', '/v1/sites', { site }));
        provisioned = true;
        const { placement } = await siteRecord(site.siteId);

        // the plan: recorded, and the retention the next backups prune by
        const plan = await completed(
          await started('PATCH', `/v1/sites/${site.siteId}/plan`, { plan: 'business' }),
        );
        expect(plan).toEqual({
          siteId: site.siteId,
          status: 'changed',
          plan: 'business',
          previous: 'starter',
          retention: RETENTION.business,
        });
        expect((await siteRecord(site.siteId)).spec?.plan).toBe('business');

        // a backup, verified: the site's last good backup
        const backup = await completed(await started('POST', `/v1/sites/${site.siteId}/backups`));
        const backupId = backup.backupId as string;
        expect((await siteRecord(site.siteId)).lastGoodBackup?.backupId).toBe(backupId);

        // a file written after the backup; the restore puts the files back as they were
        const late = `${siteNames(site.siteId).filesDir}/written-after-backup.txt`;
        testbed.exec(placement!.storageHost, ['sh', '-c', 'echo late > "$1"', 'sh', late]);
        await eventually(
          async () =>
            (await fetchSite(bed.fleet, domain, '/files/written-after-backup.txt')).status === 200
              ? true
              : undefined,
          { what: 'the late file to be served (sshfs caches a moment)' },
        );
        const restored = await completed(
          await started('POST', `/v1/sites/${site.siteId}/restore`, { backupId }),
        );
        expect(restored).toMatchObject({ siteId: site.siteId, restored: backupId });
        expect(() => testbed.exec(placement!.storageHost, ['test', '-e', late])).toThrow();
        expect((await fetchSite(bed.fleet, domain)).status).toBe(200);

        // a push to the tracked branch: the Git host's hook → the API's webhook → a deploy, read as an operation
        await makeGitActivities(bed.fleet, gitHook).ensureGitRepo({ repo });
        clone = await Clone.create(bed.fleet, repo);
        const v1 = (await clone.push('main', { VERSION: 'v1\n' }, 'v1')).commit;
        const pushed = await completed(deployWorkflowId(site.siteId, v1));
        expect(pushed).toMatchObject({ status: 'deployed', release: v1, triggeredBy: 'push:root' });
        expect((await fetchSite(bed.fleet, domain, '/release/VERSION')).bodyExcerpt).toBe('v1\n');

        // a branch the site does not track deploys nothing; billing deploys it by name
        const v2 = (await clone.push('feature', { VERSION: 'v2\n' }, 'v2')).commit;
        const deploy = await completed(
          await started('POST', `/v1/sites/${site.siteId}/deploy`, { ref: 'feature', reason: 'try v2' }),
        );
        expect(deploy).toMatchObject({
          status: 'deployed',
          release: v2,
          previous: v1,
          triggeredBy: 'api:test',
          trigger: { kind: 'request', ref: 'feature', reason: 'try v2' },
        });
        expect((await fetchSite(bed.fleet, domain, '/release/VERSION')).bodyExcerpt).toBe('v2\n');

        const rollback = await completed(
          await started('POST', `/v1/sites/${site.siteId}/rollback`, { release: v1, reason: 'v2 is slow' }),
        );
        expect(rollback).toMatchObject({ status: 'rolled-back', release: v1, previous: v2 });
        expect((await fetchSite(bed.fleet, domain, '/release/VERSION')).bodyExcerpt).toBe('v1\n');
        expect((await siteRecord(site.siteId)).release).toBe(v1);

        // a repair of the site, in line after the rollback, changes nothing and says so
        const repair = await completed(
          await started('POST', `/v1/sites/${site.siteId}/repair`, { reason: 'after the rollback' }),
        );
        expect(repair).toMatchObject({
          status: 'in-line',
          changed: false,
          outOfLine: [],
          state: 'active',
          target: { release: v1, mode: 'active' },
          triggeredBy: 'api:test',
        });

        // a release that was never kept is refused, and says why
        const unkeptId = await started('POST', `/v1/sites/${site.siteId}/rollback`, {
          release: 'f'.repeat(40),
        });
        const unkept = await outcome(unkeptId);
        expect(unkept.state).toBe('FAILED');
        expect(unkept.error).toMatchObject({
          type: 'Conflict',
          message: expect.stringContaining('no longer kept'),
        });
        // the failure's message is encrypted in Temporal's history like every payload
        const history = await api.rawClient.workflow.getHandle(unkeptId).fetchHistory();
        expect(JSON.stringify(history)).toContain('Encoded failure');
        expect(storedText(history)).not.toContain('no longer kept');
        expect(storedText(history)).toContain('binary/encrypted');
        expect((await fetchSite(bed.fleet, domain, '/release/VERSION')).bodyExcerpt).toBe('v1\n');

        await completed(await started('DELETE', `/v1/sites/${site.siteId}`));
        provisioned = false;
      } finally {
        if (provisioned) {
          const r = await request(api, {
            method: 'DELETE',
            path: `/v1/sites/${site.siteId}`,
            idempotencyKey: 'cleanup',
          });
          if (r.status === 202 || r.status === 200)
            await outcome(r.json.operationId as string).catch(() => undefined);
        }
        clone?.remove();
        const releases = makeReleaseActivities(bed.fleet);
        for (const h of bed.fleet.hosts.filter((x) => x.roles.includes('app')))
          await releases.removeSiteReleases({ siteId: site.siteId, host: h.name });
        const gitHost = bed.fleet.hosts.find((h) => h.roles.includes('git'))!.name;
        await bed.fleet.pool.exec(gitHost, ['rm', '-rf', '--', `/srv/git/${repo}`]);
      }
    },
    gitHook,
  );
  expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
}, 600_000);
