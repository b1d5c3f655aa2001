import type { ChildProcess } from 'node:child_process';
import { createActivities } from '../../activities';
import { patchRoll } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { fetchSite } from '../support/site';
import { uniqueTaskQueue } from '../support/temporal';
import { killWorker, startWorkerProcess } from '../support/workerProcess';
import {
  cleanHost,
  deprovision,
  grantTimes,
  markerCommand,
  markerCount,
  progressOf,
  provision,
  ROLL_POLL,
  withRoll,
  type TestSiteOnBed,
} from './support';

/**
 * A worker killed (SIGKILL) while a host is being patched: another worker takes over, the roll
 * resumes at that host, and no host is patched twice (the marker file the patch command appends
 * to has one line per host). The patch's activity result was lost with the worker; its retry finds
 * the per-roll guard on the host and does not run the command again.
 */

let bed: Bed;
let site: TestSiteOnBed | undefined;
/** The worker process's task queue: the site's own workflow lives there too. */
const taskQueue = uniqueTaskQueue('patch-crash');
let worker: ChildProcess | undefined;
const MARKER = `/root/qm-patch-crash-${process.pid}`;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorkerProcess(taskQueue);
  site = await provision(bed.env, taskQueue, 2);
}, 180_000);

afterAll(async () => {
  for (const h of ['host2', 'host3']) await cleanHost(bed.fleet, h, MARKER);
  if (site) await deprovision(bed.env, taskQueue, site.siteId);
  if (worker) await killWorker(worker, 'SIGTERM');
  await bed?.close();
}, 180_000);

test('SIGKILL the worker while a host is patched: the roll resumes there, every host is patched exactly once', async () => {
  const workflowId = `patch-roll-crash-${Date.now()}`;
  {
    const handle = await bed.env.client.workflow.start(patchRoll, {
      taskQueue,
      workflowId,
      args: [{ hosts: { roles: ['app'] }, canary: false, patchCommand: markerCommand(MARKER, 'sleep 4') }],
    });
    await withRoll(handle, async () => {
      await eventually(
        async () => (await progressOf(bed.env, workflowId)).hosts.host2?.state === 'patching',
        { ...ROLL_POLL, what: 'host2 patching', timeoutMs: 90_000 },
      );
      await new Promise((r) => setTimeout(r, 500)); // the command is running on host2
      await killWorker(worker!, 'SIGKILL');
      worker = await startWorkerProcess(taskQueue);

      const result = await handle.result();
      // host3's batch keeps every lock it needs from host2's: its listing is not made again
      await recordHistory(workflowId, 'patchRoll.kept-all-locks');
      expect(result.status).toBe('completed');
      expect(result.done).toEqual(['host2', 'host3']);
      // the attempt that was running finished on the host; its retry ran nothing
      expect(result.hosts.host2!.patch!.result).toBe('already-done');
      expect(result.hosts.host3!.patch!.result).toBe('ran');
      expect(await markerCount(bed.fleet, 'host2', MARKER)).toBe(1);
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(1);
      // the site's lock, asked for once and kept from host2's batch to host3's (nobody else
      // waited), through the worker's death
      expect(await grantTimes(bed.env, workflowId, site!.siteId)).toHaveLength(1);

      // and the site is back on both app servers
      const route = await createActivities(bed.fleet).readSiteRoute({ host: 'host1', siteId: site!.siteId });
      expect(route!.backends.map((b) => `${b.host} ${b.state}`).sort()).toEqual([
        'host2 active',
        'host3 active',
      ]);
      expect((await fetchSite(bed.fleet, site!.domain)).status).toBe(200);
    });
  }
});
