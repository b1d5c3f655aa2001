import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { pauseUpdate } from '../../protocol/patchRoll';
import {
  fleetOf,
  gate,
  holdPast,
  hostFailure,
  patchFailure,
  progressOf,
  startFastEnv,
  startFastWorker,
  startRoll,
  until,
  untilStatus,
  type FakeFleet,
} from './support';

/**
 * What bounds a patch roll: the maintenance window (notAfter, atCutoff 'stop' or 'finish-batch'),
 * the error budget, and the batches the planner makes around sites with several app servers; on
 * the time-skipping server with stub host activities.
 */

let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startFastWorker>>;
let fleet: FakeFleet;

beforeAll(async () => {
  env = await startFastEnv();
  worker = await startFastWorker(env, 'limits');
  fleet = worker.fleet;
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

/** An ISO time `ms` from the server's now. */
async function fromNow(ms: number): Promise<string> {
  return new Date((await env.currentTimeMs()) + ms).toISOString();
}

const closedAt = (notAfter: string) => `the maintenance window closed at ${notAfter}`;

describe('the maintenance window', () => {
  /** app1, app2, app3 share one three-server site: one host a batch, in inventory order. */
  const threeShare = () =>
    fleet.reset(fleetOf('app1', 'app2', 'app3'), [{ siteId: 'shared', appHosts: ['app1', 'app2', 'app3'] }]);

  test('a window already closed when the roll starts: nothing is locked, drained or patched', async () => {
    await threeShare();
    const notAfter = await fromNow(-1000);
    const result = await (await startRoll(fleet, { canary: false, window: { notAfter } })).result();
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: [] });
    expect(result.notStarted).toEqual(['app1', 'app2', 'app3']);
    for (const h of ['app1', 'app2', 'app3'])
      expect(result.hosts[h]).toMatchObject({ state: 'not-started', leftAs: 'untouched' });
    expect(fleet.callsOf('requestSiteLock')).toEqual([]);
    expect(fleet.callsOf('setBackendState')).toEqual([]);
    expect(fleet.patched()).toEqual([]);
  });

  test('it closes during the canary wait, before canaryWaitSeconds: the roll stops at the cutoff, not before', async () => {
    await threeShare();
    const notAfter = await fromNow(600_000);
    const roll = await startRoll(fleet, { canary: true, canaryWaitSeconds: 3600, window: { notAfter } });
    await untilStatus(roll, 'waiting-for-approval');
    await env.sleep(500_000);
    expect((await progressOf(roll)).status).toBe('waiting-for-approval');

    await env.sleep(200_000);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: ['app1'] });
    expect(result.notStarted).toEqual(['app2', 'app3']);
    expect(fleet.patched()).toEqual(['app1']);
  });

  test('a paused roll waits no longer than the window: it stops at the cutoff', async () => {
    await threeShare();
    const notAfter = await fromNow(3600_000);
    const roll = await startRoll(fleet, { canary: true, window: { notAfter } });
    await untilStatus(roll, 'waiting-for-approval');
    await roll.executeUpdate(pauseUpdate);
    await untilStatus(roll, 'paused');
    await env.sleep(3700_000);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: ['app1'] });
    expect(result.notStarted).toEqual(['app2', 'app3']);
  });

  // The cutoff passes while app2 (the second batch) is being drained. The drain is held in real
  // time until the server's clock has passed the cutoff: the lead must cover app1's whole turn.
  const LEAD_MS = 2000;

  test("atCutoff 'stop': the cutoff passes while app2 is drained: app2 is put back unpatched, app3 never starts", async () => {
    await threeShare();
    const notAfter = await fromNow(LEAD_MS);
    let reached: number | undefined;
    fleet.hooks.setBackendState = async (host, state) => {
      if (host === 'app2' && state === 'drained') reached = await holdPast(env, notAfter);
    };
    const result = await (
      await startRoll(fleet, { canary: false, window: { notAfter, atCutoff: 'stop' } })
    ).result();
    expect(reached).toBeLessThan(Date.parse(notAfter)); // else LEAD_MS is too short on this machine
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: ['app1'] });
    expect(result.notStarted).toEqual(['app2', 'app3']);
    expect(result.hosts.app2).toMatchObject({
      state: 'not-started',
      leftAs: 'readmitted',
      reason: closedAt(notAfter),
    });
    expect(result.hosts.app3).toMatchObject({ state: 'not-started', leftAs: 'untouched' });
    expect(fleet.patched()).toEqual(['app1']);
    expect(
      fleet.callsOf('setBackendState', { host: 'app2' }).map((c) => (c.input as { state: string }).state),
    ).toEqual(['drained', 'active']);
    expect(fleet.routeStates('shared')).toEqual({
      mode: 'active',
      backends: ['app1 active', 'app2 active', 'app3 active'],
    });
  });

  test("atCutoff 'stop' in the last batch: the roll says it stopped, not that it completed", async () => {
    await fleet.reset(fleetOf('app1', 'app2'), [{ siteId: 'shared', appHosts: ['app1', 'app2'] }]);
    const notAfter = await fromNow(LEAD_MS);
    fleet.hooks.setBackendState = async (host, state) => {
      if (host === 'app2' && state === 'drained') await holdPast(env, notAfter);
    };
    const result = await (
      await startRoll(fleet, { canary: false, window: { notAfter, atCutoff: 'stop' } })
    ).result();
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: ['app1'] });
    expect(result.notStarted).toEqual(['app2']);
    expect(fleet.patched()).toEqual(['app1']);
  });

  test("atCutoff 'finish-batch': the same cutoff lets app2's batch end, patched after the cutoff; app3 never starts", async () => {
    await threeShare();
    const notAfter = await fromNow(LEAD_MS);
    let reached: number | undefined;
    fleet.hooks.setBackendState = async (host, state) => {
      if (host === 'app2' && state === 'drained') reached = await holdPast(env, notAfter);
    };
    const result = await (
      await startRoll(fleet, { canary: false, window: { notAfter, atCutoff: 'finish-batch' } })
    ).result();
    expect(reached).toBeLessThan(Date.parse(notAfter));
    expect(result).toMatchObject({
      status: 'stopped',
      stopReason: closedAt(notAfter),
      done: ['app1', 'app2'],
    });
    expect(result.notStarted).toEqual(['app3']);
    expect(fleet.patched()).toEqual(['app1', 'app2']);
    expect(fleet.callsOf('runPatch', { host: 'app2' })[0]!.scheduledAt).toBeGreaterThanOrEqual(
      Date.parse(notAfter),
    );
    expect(fleet.routeStates('shared').backends).toEqual(['app1 active', 'app2 active', 'app3 active']);
  });

  test("atCutoff 'stop': a patch running at the cutoff finishes and its host is readmitted; the next batch never starts", async () => {
    await threeShare();
    const notAfter = await fromNow(LEAD_MS);
    let reached: number | undefined;
    fleet.hooks.runPatch = async (host) => {
      if (host === 'app1') reached = await holdPast(env, notAfter);
    };
    const result = await (
      await startRoll(fleet, { canary: false, window: { notAfter, atCutoff: 'stop' } })
    ).result();
    expect(reached).toBeLessThan(Date.parse(notAfter));
    expect(result).toMatchObject({ status: 'stopped', stopReason: closedAt(notAfter), done: ['app1'] });
    expect(result.notStarted).toEqual(['app2', 'app3']);
    expect(fleet.patched()).toEqual(['app1']);
    expect(fleet.routeStates('shared').backends).toEqual(['app1 active', 'app2 active', 'app3 active']);
  });
});

describe('the error budget', () => {
  test('errorBudget 0: the first failed host stops the roll; it stays out of rotation, the rest untouched', async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3'), [
      { siteId: 'multi', appHosts: ['app1', 'app2'] },
      { siteId: 'one1', appHosts: ['app1'] },
    ]);
    fleet.hooks.runPatch = (host) => {
      if (host === 'app1') throw patchFailure(host);
    };
    const result = await (await startRoll(fleet, { canary: false, errorBudget: 0 })).result();
    expect(result.status).toBe('stopped');
    expect(result.stopReason).toBe('error budget spent: 1 host(s) failed, 0 allowed');
    expect(result.failed).toEqual(['app1']);
    expect(result.hosts.app1).toMatchObject({ state: 'failed', leftAs: 'drained' });
    expect(result.hosts.app1!.reason).toMatch(/^patching: app1: the patch command exited 100: /);
    expect(result.notStarted).toEqual(['app2', 'app3']);
    expect(fleet.patched()).toEqual(['app1']); // a PatchFailed is not retried
    // app1 out of rotation: drained for the two-server site, the maintenance page for its own
    expect(fleet.routeStates('multi')).toEqual({ mode: 'active', backends: ['app1 drained', 'app2 active'] });
    expect(fleet.routeStates('one1')).toEqual({ mode: 'maintenance', backends: ['app1 active'] });
    expect(fleet.outages).toEqual([]);
  });

  test('errorBudget 1: one failed host is tolerated, the second stops the roll', async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3', 'app4'), []);
    fleet.hooks.runPatch = (host) => {
      if (host === 'app1' || host === 'app3') throw patchFailure(host);
    };
    const roll = await startRoll(fleet, { canary: false, errorBudget: 1 });
    const result = await roll.result();
    expect(result.status).toBe('stopped');
    expect(result.stopReason).toBe('error budget spent: 2 host(s) failed, 1 allowed');
    expect(result).toMatchObject({ failed: ['app1', 'app3'], done: ['app2'], notStarted: ['app4'] });
    expect(fleet.patched()).toEqual(['app1', 'app2', 'app3']);
  });

  test("a share rounds down ('50%' of 3 allows 1); a host whose containers could not be listed counts as failed and is never touched", async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3'), [{ siteId: 'one2', appHosts: ['app2'] }]);
    fleet.hooks.hostSites = (host) => {
      if (host === 'app1') throw hostFailure('app1: the Docker engine does not answer');
    };
    const roll = await startRoll(fleet, { canary: false, errorBudget: '50%' });
    await until('the roll planned', async () => (await progressOf(roll)).batches.length > 0);
    const planned = await progressOf(roll);
    expect(planned.errorBudget.allowed).toBe(1);
    expect(planned.batches).toEqual([['app2'], ['app3']]);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', failed: ['app1'], done: ['app2', 'app3'] });
    expect(result.hosts.app1).toMatchObject({ state: 'failed', leftAs: 'untouched' });
    expect(result.hosts.app1!.reason).toBe(
      'could not list its containers: app1: the Docker engine does not answer',
    );
    expect(fleet.patched()).toEqual(['app2', 'app3']);
  });

  test('a failed host leaves a two-server site one backend: the next host it shares is held back, never an outage', async () => {
    await fleet.reset(fleetOf('app1', 'app2'), [{ siteId: 'multi', appHosts: ['app1', 'app2'] }]);
    fleet.hooks.runPatch = (host) => {
      if (host === 'app1') throw patchFailure(host);
    };
    const result = await (await startRoll(fleet, { canary: false, errorBudget: 1 })).result();
    expect(result).toMatchObject({ status: 'completed', failed: ['app1'], heldBack: ['app2'], done: [] });
    expect(result.hosts.app2).toMatchObject({
      state: 'held-back',
      leftAs: 'untouched',
      reason: 'taking app2 out would leave site multi with no active app server on px1 (app1 drained)',
    });
    expect(fleet.patched()).toEqual(['app1']);
    expect(fleet.callsOf('setBackendState', { host: 'app2' })).toEqual([]);
    expect(fleet.routeStates('multi').backends).toEqual(['app1 drained', 'app2 active']);
    expect(fleet.outages).toEqual([]);
  });
});

describe('batch planning', () => {
  test('hosts that share a two-server site never go in one batch, whatever the batch size; each batch ends before the next starts', async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3', 'app4'), [
      { siteId: 'ab', appHosts: ['app1', 'app2'] },
      { siteId: 'bc', appHosts: ['app2', 'app3'] },
      { siteId: 'dd', appHosts: ['app4'] },
    ]);
    const patching = gate();
    const started: string[] = [];
    fleet.hooks.runPatch = async (host) => {
      started.push(host);
      if (started.length < 3)
        await patching.opened; // the first batch's hosts patch at once
      else patching.open();
    };
    const roll = await startRoll(fleet, { canary: false, batchSize: 3 });
    const result = await roll.result();
    expect(result.status).toBe('completed');
    expect(result.done).toEqual(['app1', 'app2', 'app3', 'app4']);
    expect(Object.fromEntries(Object.entries(result.hosts).map(([h, p]) => [h, p.batch]))).toEqual({
      app1: 1,
      app3: 1,
      app4: 1,
      app2: 2,
    });
    expect(fleet.patched().slice(0, 3).sort()).toEqual(['app1', 'app3', 'app4']);
    expect(fleet.patched()[3]).toBe('app2');
    expect(result.hosts.app4!.sites).toEqual([{ siteId: 'dd', action: 'maintenance' }]);
    expect(result.hosts.app2!.sites).toEqual([
      { siteId: 'ab', action: 'drain' },
      { siteId: 'bc', action: 'drain' },
    ]);
    expect(fleet.outages).toEqual([]);
    expect(fleet.routeStates('ab').backends).toEqual(['app1 active', 'app2 active']);
    expect(fleet.routeStates('bc').backends).toEqual(['app2 active', 'app3 active']);
  });

  test("a three-server site has at most two of its hosts in a batch; batchSize as a share rounds up ('60%' of 4 is 3)", async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3', 'app4'), [
      { siteId: 'abc', appHosts: ['app1', 'app2', 'app3'] },
    ]);
    const roll = await startRoll(fleet, { canary: false, batchSize: '60%' });
    await until('the roll planned', async () => (await progressOf(roll)).batches.length > 0);
    expect((await progressOf(roll)).batches).toEqual([['app1', 'app2', 'app4'], ['app3']]);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2', 'app3', 'app4'] });
    expect(fleet.outages).toEqual([]);
  });

  test('with a canary the first host goes alone, then batches of batchSize', async () => {
    await fleet.reset(fleetOf('app1', 'app2', 'app3', 'app4', 'app5'), []);
    const roll = await startRoll(fleet, { canary: true, canaryWaitSeconds: 60, batchSize: 2 });
    const waiting = await untilStatus(roll, 'waiting-for-approval');
    expect(waiting.batches).toEqual([['app1'], ['app2', 'app3'], ['app4', 'app5']]);
    await env.sleep(61_000);
    expect((await roll.result()).done).toEqual(['app1', 'app2', 'app3', 'app4', 'app5']);
  });

  test('roles and labels select the hosts, in inventory order; a name not in the inventory fails the roll before anything', async () => {
    await fleet.reset(
      [
        { name: 'px1', roles: ['proxy'], labels: { rack: 'a' } },
        { name: 'app1', roles: ['app'], labels: { rack: 'a' } },
        { name: 'app2', roles: ['app'], labels: { rack: 'b' } },
        { name: 'app3', roles: ['app'], labels: { rack: 'a' } },
      ],
      [],
    );
    const roll = await startRoll(fleet, { canary: false, hosts: { roles: ['app'], labels: { rack: 'a' } } });
    const result = await roll.result();
    expect(result.done).toEqual(['app1', 'app3']);
    expect(Object.keys(result.hosts)).toEqual(['app1', 'app3']);

    const bad = await startRoll(fleet, { canary: false, hosts: { names: ['app1', 'app9'] } });
    const err = await bad.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as Error).message).toBe(
      'invalid patchRoll input: hosts.names: not in the inventory: app9',
    );
    expect(fleet.patched()).toEqual(['app1', 'app3']); // the bad roll patched nothing
  });
});
