import { createActivities } from '../../activities';
import { patchRoll } from '../../workflows';
import {
  abortUpdate,
  approveUpdate,
  pauseUpdate,
  resumeUpdate,
  skipHostUpdate,
} from '../../protocol/patchRoll';
import { siteQuery } from '../../protocol/site';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { startWorker, uniqueTaskQueue, type FileWorker } from '../support/temporal';
import { fetchSite, siteContainers } from '../support/site';
import {
  cleanHost,
  deprovision,
  markerCommand,
  markerCount,
  poll,
  grantTimes,
  progressOf,
  provision,
  readmitAll,
  stopAllPolls,
  ROLL_POLL,
  withRoll,
  type TestSiteOnBed,
} from './support';

/**
 * The patch roll on the real bed (host1: proxy; host2, host3: app servers), with sites made by
 * provisionSite: one on both app servers, one on each alone. What is checked is what a customer
 * and ops would see: traffic through the real nginx while hosts go out and come back, the routes
 * on the proxy, the marker files the patch command writes on each host, the containers.
 */

let bed: Bed;
let worker: FileWorker;
const sites: { multi?: TestSiteOnBed; single2?: TestSiteOnBed; single3?: TestSiteOnBed } = {};
/** Sites placed where a single-server site already was (placement picks the least loaded host). */
const extra: TestSiteOnBed[] = [];
const APP_HOSTS = ['host2', 'host3'];
const MARKER = `/root/qm-patch-test-${process.pid}`;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed, { taskQueue: uniqueTaskQueue('patch') });
  await worker.with(async (taskQueue) => {
    // one site on both app servers, then one on each alone (placement: least loaded first); the
    // two-server site's id sorts first, so its lock is the first a batch asks for
    sites.multi = await provision(bed.env, taskQueue, 2, '0');
    for (let i = 0; i < 3 && !(sites.single2 && sites.single3); i++) {
      const s = await provision(bed.env, taskQueue, 1, '1');
      const key = s.placement.appHosts[0] === 'host2' ? 'single2' : 'single3';
      if (sites[key]) extra.push(s);
      else sites[key] = s;
    }
  });
  expect(sites.single2 && sites.single3).toBeTruthy();
}, 240_000);

afterEach(async () => {
  await stopAllPolls();
  for (const h of APP_HOSTS) await cleanHost(bed.fleet, h, MARKER);
  for (const s of Object.values(sites)) if (s) await readmitAll(bed.fleet, s);
});

afterAll(async () => {
  await worker.with(async (taskQueue) => {
    await Promise.all(
      [...Object.values(sites), ...extra].map((s) => s && deprovision(bed.env, taskQueue, s.siteId)),
    );
  });
  await worker?.stop();
  await bed?.close();
}, 240_000);

/** Why an Update was refused: the validator's message (the cause of the client's error). */
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  return (err?.cause as Error | undefined)?.message ?? `not refused (${String(err)})`;
}

const rollId = (name: string) => `patch-roll-${name}-${Date.now()}`;

test('roll every app host: a canary, ops pause/approve/resume, zero failed requests on the two-server site, the maintenance page (never an error) for a single-server site, a rebooted host serves again', async () => {
  const multi = sites.multi!;
  const single = sites.single3!;
  const workflowId = rollId('all');
  await worker.with(async (taskQueue) => {
    const multiPoll = poll(bed.fleet, multi.domain);
    const singlePoll = poll(bed.fleet, single.domain);
    const handle = await bed.env.client.workflow.start(patchRoll, {
      taskQueue,
      workflowId,
      args: [
        {
          hosts: { roles: ['app'] },
          batchSize: 2, // the planner still puts host2 and host3 apart: they share the two-server site
          canary: true,
          // host3 "needs a reboot" after its patch (/run/reboot-required, the default check)
          patchCommand: markerCommand(
            MARKER,
            'if [ "$(hostname)" = host3 ]; then touch /run/reboot-required; fi; sleep 1.5',
          ),
          triggeredBy: 'test',
        },
      ],
    });
    await withRoll(handle, async () => {
      // the canary (host2) alone, then the roll waits for ops
      const waiting = await eventually(
        async () => {
          const p = await progressOf(bed.env, workflowId);
          return p.status === 'waiting-for-approval' && p;
        },
        { ...ROLL_POLL, what: 'the canary wait' },
      );
      expect(waiting.batches).toEqual([['host2'], ['host3']]);
      expect(waiting.done).toEqual(['host2']);
      expect(waiting.remaining).toEqual(['host3']);
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);

      // paused, an approval does not start the next batch until resumed
      expect(await handle.executeUpdate(pauseUpdate)).toBe('waiting-for-approval');
      expect(await refusal(handle.executeUpdate(pauseUpdate))).toMatch(/already paused/);
      await handle.executeUpdate(approveUpdate);
      await eventually(async () => (await progressOf(bed.env, workflowId)).status === 'paused', {
        ...ROLL_POLL,
        what: 'paused',
      });
      await new Promise((r) => setTimeout(r, 1500));
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      await handle.executeUpdate(resumeUpdate);

      const result = await handle.result();
      const [multiSeen, singleSeen] = await Promise.all([multiPoll.stop(), singlePoll.stop()]);
      await recordHistory(workflowId, 'patchRoll');

      expect(result.status).toBe('completed');
      expect(result.done).toEqual(['host2', 'host3']);
      expect(result.hosts.host3!.rebooted).toBe(true);
      expect(result.hosts.host2!.rebooted).toBeUndefined();
      expect(result.hosts.host2!.sites).toEqual(
        expect.arrayContaining([
          { siteId: multi.siteId, action: 'drain' },
          { siteId: sites.single2!.siteId, action: 'maintenance' },
        ]),
      );
      for (const h of APP_HOSTS) expect(await markerCount(bed.fleet, h, MARKER)).toBe(1);

      // the two-server site never failed a request, through a drain on each host and a reboot
      const failed = multiSeen.filter((s) => s.status !== 200);
      expect({ requests: multiSeen.length, failed }).toEqual({ requests: multiSeen.length, failed: [] });
      expect(multiSeen.length).toBeGreaterThan(50);
      // the single-server site: its page, or the maintenance page during its host's turn; never an error
      const statuses = new Set(singleSeen.map((s) => `${s.status} ${s.siteState ?? ''}`.trim()));
      expect([...statuses].sort()).toEqual(['200', '503 maintenance']);

      // everything back: routes active on the proxy, containers running on the rebooted host
      const acts = createActivities(bed.fleet);
      for (const s of [multi, sites.single2!, single]) {
        const route = await acts.readSiteRoute({ host: 'host1', siteId: s.siteId });
        expect(route!.mode).toBe('active');
        expect(route!.backends.every((b) => b.state === 'active')).toBe(true);
        expect((await fetchSite(bed.fleet, s.domain)).status).toBe(200);
      }
      const onHost3 = (await siteContainers(bed.fleet, single.siteId)).filter((c) => c.startsWith('host3:'));
      expect(onHost3.length).toBeGreaterThan(0);
      expect(onHost3.every((c) => c.endsWith('(running)'))).toBe(true);

      // ops can find it: Operation=patch-roll and Hosts
      const desc = await handle.describe();
      expect(desc.searchAttributes.Operation).toEqual(['patch-roll']);
      expect((desc.searchAttributes.Hosts as string[]).sort()).toEqual(APP_HOSTS);
    });
  });
});

test('between batches a site keeps its lock when nobody waits for it; an operation that queued meanwhile goes first', async () => {
  const multi = sites.multi!;
  await worker.with(async (taskQueue) => {
    /** A roll of `hosts`, one host a batch, no canary, whose patch takes `seconds`. */
    const startRoll = (workflowId: string, hosts: string[], seconds: number) =>
      bed.env.client.workflow.start(patchRoll, {
        taskQueue,
        workflowId,
        args: [
          {
            hosts: { names: hosts },
            batchSize: 1,
            canary: false,
            patchCommand: markerCommand(MARKER, `sleep ${seconds}`),
          },
        ],
      });
    // alone: host2, then host3; the two-server site's lock is asked for and granted once
    const aloneId = rollId('keep');
    const alone = await (await startRoll(aloneId, APP_HOSTS, 0.2)).result();
    await recordHistory(aloneId, 'patchRoll.keep-locks');
    expect(alone.done).toEqual(APP_HOSTS);
    expect(await grantTimes(bed.env, aloneId, multi.siteId)).toHaveLength(1);
    expect(await grantTimes(bed.env, aloneId, sites.single2!.siteId)).toHaveLength(1);
    expect(await grantTimes(bed.env, aloneId, sites.single3!.siteId)).toHaveLength(1);
    // and released at the end: nobody holds it
    const view = await bed.env.client.workflow.getHandle(`site:${multi.siteId}`).query(siteQuery);
    expect(view.holder).toBeUndefined();

    // a second roll of host2 queues for the site's lock while the first patches host2: the first
    // lets it go after its batch, the second patches host2, then the first goes on with host3
    const firstId = rollId('first');
    const first = await startRoll(firstId, APP_HOSTS, 2);
    await eventually(async () => (await progressOf(bed.env, firstId)).hosts.host2?.state === 'patching', {
      ...ROLL_POLL,
      what: 'host2 patching',
    });
    const secondId = rollId('second');
    const second = await startRoll(secondId, ['host2'], 0.2);
    const [r1, r2] = await Promise.all([first.result(), second.result()]);
    expect([r1.status, r1.done]).toEqual(['completed', APP_HOSTS]);
    expect([r2.status, r2.done]).toEqual(['completed', ['host2']]);
    const [g1, g2] = await Promise.all([
      grantTimes(bed.env, firstId, multi.siteId),
      grantTimes(bed.env, secondId, multi.siteId),
    ]);
    expect(g1).toHaveLength(2);
    expect(g2).toHaveLength(1);
    expect(g1[0]! < g2[0]! && g2[0]! < g1[1]!).toBe(true);
    expect(await markerCount(bed.fleet, 'host2', MARKER)).toBe(3);
    expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(2);
  });
});

test('a patch that fails with an error budget of 0 stops the roll: that host stays drained, the rest untouched', async () => {
  const workflowId = rollId('fail');
  await worker.with(async (taskQueue) => {
    const result = await bed.env.client.workflow.execute(patchRoll, {
      taskQueue,
      workflowId,
      args: [
        {
          hosts: { names: ['host2', 'host3'] },
          canary: false,
          errorBudget: 0,
          patchCommand: markerCommand(
            MARKER,
            'echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100',
          ),
        },
      ],
    });
    expect(result.status).toBe('stopped');
    expect(result.stopReason).toMatch(/error budget spent: 1 host\(s\) failed, 0 allowed/);
    expect(result.failed).toEqual(['host2']);
    expect(result.hosts.host2).toMatchObject({ state: 'failed', leftAs: 'drained' });
    expect(result.hosts.host2!.reason).toMatch(
      /patching: host2: the patch command exited 100: .*dpkg returned an error/,
    );
    expect(result.notStarted).toEqual(['host3']);
    expect(await markerCount(bed.fleet, 'host2', MARKER)).toBe(1);
    expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);

    // host2 out of rotation: drained for the two-server site (which still serves), maintenance page for its own
    const acts = createActivities(bed.fleet);
    const multiRoute = await acts.readSiteRoute({ host: 'host1', siteId: sites.multi!.siteId });
    expect(multiRoute!.backends.map((b) => `${b.host} ${b.state}`).sort()).toEqual([
      'host2 drained',
      'host3 active',
    ]);
    expect((await fetchSite(bed.fleet, sites.multi!.domain)).status).toBe(200);
    const own = await fetchSite(bed.fleet, sites.single2!.domain);
    expect([own.status, own.siteState]).toEqual([503, 'maintenance']);
    // host3's site untouched
    expect((await acts.readSiteRoute({ host: 'host1', siteId: sites.single3!.siteId }))!.mode).toBe('active');
  });
});

test('skip a host during the canary wait, then abort mid-host: the host in flight finishes and is readmitted', async () => {
  // a skip: host3 is left out, the roll completes without it
  const skipId = rollId('skip');
  await worker.with(async (taskQueue) => {
    const handle = await bed.env.client.workflow.start(patchRoll, {
      taskQueue,
      workflowId: skipId,
      args: [{ hosts: { roles: ['app'] }, canary: true, patchCommand: markerCommand(MARKER, 'true') }],
    });
    await withRoll(handle, async () => {
      await eventually(async () => (await progressOf(bed.env, skipId)).status === 'waiting-for-approval', {
        ...ROLL_POLL,
        what: 'the canary wait',
      });
      expect(await refusal(handle.executeUpdate(skipHostUpdate, { args: [{ host: 'host2' }] }))).toMatch(
        /host2 is done: only a host whose patch has not started can be skipped/,
      );
      expect(await refusal(handle.executeUpdate(skipHostUpdate, { args: [{ host: 'host9' }] }))).toMatch(
        /not in this roll/,
      );
      expect(await handle.executeUpdate(skipHostUpdate, { args: [{ host: 'host3' }] })).toBe('skipped');
      await handle.executeUpdate(approveUpdate);
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'completed', done: ['host2'], skipped: ['host3'] });
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
    });
  });
  for (const h of APP_HOSTS) await cleanHost(bed.fleet, h, MARKER);

  // an abort while host2 patches: host2 finishes and is readmitted, host3 never starts
  const abortId = rollId('abort');
  await worker.with(async (taskQueue) => {
    const handle = await bed.env.client.workflow.start(patchRoll, {
      taskQueue,
      workflowId: abortId,
      args: [{ hosts: { roles: ['app'] }, canary: false, patchCommand: markerCommand(MARKER, 'sleep 3') }],
    });
    await withRoll(handle, async () => {
      await eventually(async () => (await progressOf(bed.env, abortId)).hosts.host2?.state === 'patching', {
        ...ROLL_POLL,
        what: 'host2 patching',
      });
      expect(await handle.executeUpdate(abortUpdate, { args: [{ reason: 'customer event tonight' }] })).toBe(
        'running',
      );
      const result = await handle.result();
      expect(result.status).toBe('aborted');
      expect(result.stopReason).toBe('aborted by ops: customer event tonight');
      expect(result.done).toEqual(['host2']);
      expect(result.notStarted).toEqual(['host3']);
      expect(await markerCount(bed.fleet, 'host3', MARKER)).toBe(0);
      const route = await createActivities(bed.fleet).readSiteRoute({
        host: 'host1',
        siteId: sites.multi!.siteId,
      });
      expect(route!.backends.every((b) => b.state === 'active')).toBe(true);
    });
  });
});
