import { createActivities } from '../../activities';
import { PROXY_DIR } from '../../activities/proxy/layout';
import { patchRoll } from '../../workflows';
import type { PatchRollInput } from '../../protocol/patchRoll';
import { approveUpdate } from '../../protocol/patchRoll';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { startWorker, uniqueTaskQueue, type FileWorker } from '../support/temporal';
import { fetchSite } from '../support/site';
import {
  cleanHost,
  deprovision,
  markerCommand,
  markerCount,
  progressOf,
  provision,
  readmitAll,
  ROLL_POLL,
  withRoll,
  type TestSiteOnBed,
} from './support';

/**
 * The two paths of a patch roll that wait on the clock, on the real bed (host1: proxy; host2,
 * host3: app servers, one site on both, so the planner puts them in two batches):
 *   - the maintenance window (`window.notAfter`): no host starts its patch after it; with
 *     `atCutoff: 'stop'` a host of the running batch whose patch has not started is put back,
 *     one whose patch runs finishes; with `'finish-batch'` the running batch ends; either way
 *     the next batch never starts;
 *   - the canary: the first host alone, then no further host without ops' approval, unless
 *     `canaryWaitSeconds` runs out first (or the window closes during the wait).
 * Where a roll must be at the cutoff, the test holds it there for real: the proxy's own change
 * lock held by the test (so the host's drain waits), or the patch command waiting for a gate
 * file. The cutoff is set LEAD_MS ahead: the roll only has to reach the held step by then.
 */

const LEAD_MS = 8000;
const APP_HOSTS = ['host2', 'host3'];
const MARKER = `/root/qm-patch-window-${process.pid}`;
/** On host2: the gated patch waits until this file exists. */
const GATE = `/root/qm-patch-gate-${process.pid}`;
/** On host1: the proxy-lock holder runs while this file exists. */
const HOLD = `/root/qm-proxy-hold-${process.pid}`;

let bed: Bed;
let worker: FileWorker;
let site: TestSiteOnBed;
let holder: Promise<unknown> | undefined;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed, { taskQueue: uniqueTaskQueue('patch') });
  site = await provision(bed.env, worker.taskQueue, 2);
  expect([...site.placement.appHosts].sort()).toEqual(APP_HOSTS);
}, 180_000);

afterEach(async () => {
  await releaseProxy();
  for (const h of APP_HOSTS) await cleanHost(bed.fleet, h, MARKER);
  await bed.fleet.pool.exec('host2', ['rm', '-f', GATE]);
  await readmitAll(bed.fleet, site);
});

afterAll(async () => {
  if (site) await deprovision(bed.env, worker.taskQueue, site.siteId);
  await worker?.stop();
  await bed?.close();
}, 180_000);

/**
 * Take the proxy's change lock (the flock every route change on host1 takes, activities/proxy)
 * and keep it until releaseProxy(): a drain or readmit on host1 waits meanwhile (up to 60 s).
 */
async function holdProxy() {
  await bed.fleet.pool.exec('host1', ['touch', HOLD]);
  holder = bed.fleet.pool.exec('host1', [
    'sh',
    '-c',
    'exec 9>>"$1"; flock 9; touch "$2.held"; i=0; while [ -e "$2" ] && [ $i -lt 500 ]; do sleep 0.1; i=$((i+1)); done; rm -f "$2.held"',
    'qm-test-hold',
    `${PROXY_DIR}/.qm-lock`,
    HOLD,
  ]);
  await eventually(
    async () => {
      const r = await bed.fleet.pool.exec('host1', ['test', '-e', `${HOLD}.held`], { check: false });
      return r.code === 0;
    },
    { ...ROLL_POLL, what: 'the proxy lock held' },
  );
}

/**
 * A change to host1's proxy waits for the lock: its candidate files are written (the roll's drain
 * has started) and stay until the change goes through. Seen on the bed, since a workflow task
 * that runs a local activity answers no query until it ends or is heartbeated (every 8 s).
 */
async function drainWaiting() {
  await eventually(
    async () => {
      const r = await bed.fleet.pool.exec(
        'host1',
        ['sh', '-c', 'ls "$1"/*.qm-cand-* >/dev/null 2>&1', 'qm', `${PROXY_DIR}/sites`],
        {
          check: false,
        },
      );
      return r.code === 0;
    },
    { ...ROLL_POLL, what: 'a drain waiting for the proxy lock' },
  );
}

async function releaseProxy() {
  if (!holder) return;
  await bed.fleet.pool.exec('host1', ['rm', '-f', HOLD]);
  await holder;
  holder = undefined;
}

/** Wait (real time) until `iso` has passed, with a margin. */
async function passCutoff(iso: string) {
  const ms = Date.parse(iso) + 300 - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** Fail clearly (not as a wrong outcome) if the roll reached the held step only after the cutoff. */
function reachedBefore(cutoff: string) {
  if (Date.now() >= Date.parse(cutoff))
    throw new Error(
      `the roll reached the held step only after the cutoff (LEAD_MS ${LEAD_MS} too short here)`,
    );
}

async function startRoll(name: string, input: Omit<PatchRollInput, 'hosts'>) {
  const workflowId = `patch-roll-${name}-${Date.now()}`;
  const handle = await bed.env.client.workflow.start(patchRoll, {
    taskQueue: worker.taskQueue,
    workflowId,
    args: [{ hosts: { names: APP_HOSTS }, triggeredBy: 'test', ...input }],
  });
  return { handle, workflowId };
}

async function routeStates() {
  const route = await createActivities(bed.fleet).readSiteRoute({ host: 'host1', siteId: site.siteId });
  return { mode: route!.mode, backends: route!.backends.map((b) => `${b.host} ${b.state}`).sort() };
}

const ALL_ACTIVE = { mode: 'active', backends: ['host2 active', 'host3 active'] };

/** The times (epoch seconds) the patch command ran on the host, from its marker lines. */
async function markerTimes(host: string): Promise<number[]> {
  const r = await bed.fleet.pool.exec(host, ['sh', '-c', 'cat "$1" 2>/dev/null || true', 'qm', MARKER]);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split(' ')[1]));
}

describe('the maintenance window', () => {
  test("atCutoff 'stop': the cutoff passes while host2 is being drained: host2 is put back unpatched, host3 never starts", async () => {
    const notAfter = new Date(Date.now() + LEAD_MS).toISOString();
    await holdProxy();
    const { handle } = await startRoll('cutoff-stop', {
      canary: false,
      window: { notAfter, atCutoff: 'stop' },
      patchCommand: markerCommand(MARKER, 'true'),
    });
    await withRoll(handle, async () => {
      await drainWaiting();
      reachedBefore(notAfter);
      await passCutoff(notAfter);
      await releaseProxy(); // the drain goes through now, after the cutoff

      const result = await handle.result();
      expect(result.status).toBe('stopped');
      expect(result.stopReason).toBe(`the maintenance window closed at ${notAfter}`);
      expect(result.done).toEqual([]);
      expect(result.notStarted).toEqual(APP_HOSTS);
      expect(result.hosts.host2).toMatchObject({
        state: 'not-started',
        leftAs: 'readmitted',
        reason: `the maintenance window closed at ${notAfter}`,
      });
      expect(result.hosts.host2!.sites).toEqual([{ siteId: site.siteId, action: 'drain' }]);
      expect(result.hosts.host3).toMatchObject({ state: 'not-started', leftAs: 'untouched' });
      for (const h of APP_HOSTS) expect(await markerCount(bed.fleet, h, MARKER)).toBe(0);
      expect(await routeStates()).toEqual(ALL_ACTIVE);
      expect((await fetchSite(bed.fleet, site.domain)).status).toBe(200);
    });
  });

  test("atCutoff 'finish-batch': the same cutoff lets host2's batch end (patched, readmitted); the next batch never starts", async () => {
    const notAfter = new Date(Date.now() + LEAD_MS).toISOString();
    await holdProxy();
    const { handle } = await startRoll('cutoff-finish', {
      canary: false,
      window: { notAfter, atCutoff: 'finish-batch' },
      patchCommand: markerCommand(MARKER, 'true'),
    });
    await withRoll(handle, async () => {
      await drainWaiting();
      reachedBefore(notAfter);
      await passCutoff(notAfter);
      await releaseProxy();

      const result = await handle.result();
      expect(result.status).toBe('stopped');
      expect(result.stopReason).toBe(`the maintenance window closed at ${notAfter}`);
      expect(result.done).toEqual(['host2']);
      expect(result.notStarted).toEqual(['host3']);
      expect(result.hosts.host3).toMatchObject({ state: 'not-started', leftAs: 'untouched' });
      expect(await markerCount(bed.fleet, 'host2', MARKER)).toBe(1);
      // host2 was patched after the cutoff (the batch was allowed to end), host3 not at all
      expect((await markerTimes('host2'))[0]! * 1000).toBeGreaterThanOrEqual(Date.parse(notAfter));
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      expect(await routeStates()).toEqual(ALL_ACTIVE);
    });
  });

  test("atCutoff 'stop': a patch running at the cutoff finishes and its host is readmitted; no host starts after", async () => {
    const notAfter = new Date(Date.now() + LEAD_MS).toISOString();
    const { handle, workflowId } = await startRoll('cutoff-inflight', {
      canary: false,
      window: { notAfter, atCutoff: 'stop' },
      patchCommand: markerCommand(
        MARKER,
        'i=0; while [ ! -e "$2" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
      ).concat(GATE),
    });
    await withRoll(handle, async () => {
      await eventually(
        async () => (await progressOf(bed.env, workflowId)).hosts.host2?.state === 'patching',
        { ...ROLL_POLL, what: 'host2 patching' },
      );
      reachedBefore(notAfter);
      // host2 drained while its patch runs
      expect(await routeStates()).toEqual({ mode: 'active', backends: ['host2 drained', 'host3 active'] });
      await passCutoff(notAfter);
      await bed.fleet.pool.exec('host2', ['touch', GATE]);

      const result = await handle.result();
      expect(result.status).toBe('stopped');
      expect(result.stopReason).toBe(`the maintenance window closed at ${notAfter}`);
      expect(result.done).toEqual(['host2']);
      expect(result.notStarted).toEqual(['host3']);
      expect(await markerCount(bed.fleet, 'host2', MARKER)).toBe(1);
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      expect(await routeStates()).toEqual(ALL_ACTIVE);
    });
  });

  test('a window already closed when the roll starts: nothing is touched', async () => {
    const notAfter = new Date(Date.now() - 1000).toISOString();
    const { handle } = await startRoll('cutoff-past', {
      canary: false,
      window: { notAfter },
      patchCommand: markerCommand(MARKER, 'true'),
    });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'stopped', done: [], notStarted: APP_HOSTS });
    expect(result.stopReason).toBe(`the maintenance window closed at ${notAfter}`);
    for (const h of APP_HOSTS) {
      expect(result.hosts[h]).toMatchObject({ state: 'not-started', leftAs: 'untouched' });
      expect(await markerCount(bed.fleet, h, MARKER)).toBe(0);
    }
    expect(await routeStates()).toEqual(ALL_ACTIVE);
  });
});

describe('the canary', () => {
  test('canaryWaitSeconds runs out with no approval: the roll goes on by itself, not before', async () => {
    const { handle, workflowId } = await startRoll('canary-timeout', {
      canary: true,
      canaryWaitSeconds: 2,
      patchCommand: markerCommand(MARKER, 'true'),
    });
    await withRoll(handle, async () => {
      const seen = new Set<string>();
      const result = await eventually(
        async () => {
          const p = await progressOf(bed.env, workflowId);
          seen.add(p.status);
          return ['completed', 'stopped', 'aborted'].includes(p.status) && (await handle.result());
        },
        { ...ROLL_POLL, what: 'the roll to end' },
      );
      expect(seen).toContain('waiting-for-approval');
      expect(result.status).toBe('completed');
      expect(result.done).toEqual(APP_HOSTS);
      const [t2, t3] = [(await markerTimes('host2'))[0]!, (await markerTimes('host3'))[0]!];
      // host3 only after the canary host, and at least canaryWaitSeconds after it (the wait
      // starts once host2 is done, which is after its patch)
      expect(t3 - t2).toBeGreaterThanOrEqual(2);
      for (const h of APP_HOSTS) expect(await markerCount(bed.fleet, h, MARKER)).toBe(1);
      const progress = await progressOf(bed.env, workflowId);
      expect(progress.canary).toEqual({ host: 'host2', approved: true });
      expect(await routeStates()).toEqual(ALL_ACTIVE);
    });
  });

  test('no canaryWaitSeconds: nothing more is patched until ops approve', async () => {
    const { handle, workflowId } = await startRoll('canary-wait', {
      canary: true,
      patchCommand: markerCommand(MARKER, 'true'),
    });
    await withRoll(handle, async () => {
      await eventually(
        async () => (await progressOf(bed.env, workflowId)).status === 'waiting-for-approval',
        { ...ROLL_POLL, what: 'the canary wait' },
      );
      await new Promise((r) => setTimeout(r, 3000));
      const p = await progressOf(bed.env, workflowId);
      expect(p.status).toBe('waiting-for-approval');
      expect(p.done).toEqual(['host2']);
      expect(p.hosts.host3!.state).toBe('pending');
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      expect(await routeStates()).toEqual(ALL_ACTIVE);

      await handle.executeUpdate(approveUpdate);
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'completed', done: APP_HOSTS });
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(1);
    });
  });

  test('the window closes during the canary wait (before canaryWaitSeconds): the roll stops, host3 untouched', async () => {
    const notAfter = new Date(Date.now() + LEAD_MS).toISOString();
    const { handle, workflowId } = await startRoll('canary-window', {
      canary: true,
      canaryWaitSeconds: 3600,
      window: { notAfter },
      patchCommand: markerCommand(MARKER, 'true'),
    });
    await withRoll(handle, async () => {
      await eventually(
        async () => (await progressOf(bed.env, workflowId)).status === 'waiting-for-approval',
        { ...ROLL_POLL, what: 'the canary wait' },
      );
      reachedBefore(notAfter);
      const result = await handle.result();
      expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(notAfter)); // it waited for the cutoff
      expect(result.status).toBe('stopped');
      expect(result.stopReason).toBe(`the maintenance window closed at ${notAfter}`);
      expect(result.done).toEqual(['host2']);
      expect(result.notStarted).toEqual(['host3']);
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      expect(await routeStates()).toEqual(ALL_ACTIVE);
    });
  });
});
