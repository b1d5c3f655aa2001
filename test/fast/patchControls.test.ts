import type { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  skipHostSignal,
  skipHostUpdate,
} from '../../protocol/patchRoll';
import { finishSignal, heldOperation, heldOperationQuery } from './workflows';
import {
  fleetOf,
  gate,
  progressOf,
  refusal,
  startFastEnv,
  startFastWorker,
  startRoll,
  until,
  untilHost,
  untilStatus,
  type FakeFleet,
} from './support';

/**
 * The patch roll's canary and ops controls (approve, pause, resume, abort, skipHost, as Updates
 * and as Signals), on the time-skipping server with stub host activities. The fleet: px1 (proxy),
 * app1 and app2 sharing a two-server site, and a single-server site on each: with a canary the
 * batches are [app1], [app2].
 */

const DAY = 24 * 3600_000;

let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startFastWorker>>;
let fleet: FakeFleet;

beforeAll(async () => {
  env = await startFastEnv();
  worker = await startFastWorker(env, 'controls');
  fleet = worker.fleet;
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

beforeEach(() =>
  fleet.reset(fleetOf('app1', 'app2'), [
    { siteId: 'multi', appHosts: ['app1', 'app2'] },
    { siteId: 'one1', appHosts: ['app1'] },
    { siteId: 'one2', appHosts: ['app2'] },
  ]),
);

const ALL_ACTIVE = {
  multi: { mode: 'active', backends: ['app1 active', 'app2 active'] },
  one1: { mode: 'active', backends: ['app1 active'] },
  one2: { mode: 'active', backends: ['app2 active'] },
};

function routes() {
  return {
    multi: fleet.routeStates('multi'),
    one1: fleet.routeStates('one1'),
    one2: fleet.routeStates('one2'),
  };
}

/** The server time app2's patch was scheduled at, minus app1's. */
function patchGap(): number {
  const [a, b] = ['app1', 'app2'].map((h) => fleet.callsOf('runPatch', { host: h })[0]!.scheduledAt!);
  return b! - a!;
}

describe('the canary', () => {
  test('the first host alone, then nothing more until ops approve (a week later, still waiting); approve goes on', async () => {
    const roll = await startRoll(fleet, { canary: true });
    const waiting = await untilStatus(roll, 'waiting-for-approval');
    expect(waiting.batches).toEqual([['app1'], ['app2']]);
    expect(waiting.canary).toEqual({ host: 'app1', approved: false });
    expect(waiting.done).toEqual(['app1']);
    expect(waiting.hosts.app1!.sites).toEqual([
      { siteId: 'multi', action: 'drain' },
      { siteId: 'one1', action: 'maintenance' },
    ]);
    expect(fleet.patched()).toEqual(['app1']);
    expect(routes()).toEqual(ALL_ACTIVE); // app1 back in rotation while the roll waits

    await env.sleep(7 * DAY);
    expect((await progressOf(roll)).status).toBe('waiting-for-approval');
    expect(fleet.patched()).toEqual(['app1']);

    // app2's patch held, so that the roll still runs when approve is asked for again
    const patch2 = gate();
    fleet.hooks.runPatch = (host) => (host === 'app2' ? patch2.opened : undefined);
    expect(await roll.executeUpdate(approveUpdate)).toBe('waiting-for-approval');
    await untilHost(roll, 'app2', 'patching');
    expect(await refusal(roll.executeUpdate(approveUpdate))).toBe('already approved (or no canary)');
    patch2.open();

    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'], notStarted: [] });
    expect(result.hosts.app2!.sites).toEqual([
      { siteId: 'multi', action: 'drain' },
      { siteId: 'one2', action: 'maintenance' },
    ]);
    expect(fleet.patched()).toEqual(['app1', 'app2']);
    expect(patchGap()).toBeGreaterThanOrEqual(7 * DAY);
    expect(routes()).toEqual(ALL_ACTIVE);
    expect(fleet.outages).toEqual([]);
  });

  test('canaryWaitSeconds runs out with no approval: the roll goes on by itself, not before', async () => {
    const roll = await startRoll(fleet, { canary: true, canaryWaitSeconds: 3600 });
    await untilStatus(roll, 'waiting-for-approval');
    await env.sleep(3500_000);
    expect((await progressOf(roll)).status).toBe('waiting-for-approval');
    expect(fleet.patched()).toEqual(['app1']);

    await env.sleep(200_000);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'] });
    expect(fleet.patched()).toEqual(['app1', 'app2']);
    expect(patchGap()).toBeGreaterThanOrEqual(3600_000);
  });

  test('approved before canaryWaitSeconds runs out: the roll goes on at once', async () => {
    const roll = await startRoll(fleet, { canary: true, canaryWaitSeconds: 3600 });
    await untilStatus(roll, 'waiting-for-approval');
    expect(await roll.executeUpdate(approveUpdate)).toBe('waiting-for-approval');
    const result = await roll.result(); // no time skipped: it must not wait for the hour
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'] });
    expect(patchGap()).toBeLessThan(60_000);
  });

  test('without a canary there is nothing to approve: the Update is refused', async () => {
    const patch1 = gate();
    fleet.hooks.runPatch = () => patch1.opened;
    const roll = await startRoll(fleet, { canary: false });
    await untilHost(roll, 'app1', 'patching');
    expect(await refusal(roll.executeUpdate(approveUpdate))).toBe('already approved (or no canary)');
    patch1.open();
    expect((await roll.result()).status).toBe('completed');
  });
});

describe('ops controls as Updates', () => {
  test('pause during the canary wait: an approval starts nothing until resume; the refusals say why', async () => {
    const roll = await startRoll(fleet, { canary: true });
    await untilStatus(roll, 'waiting-for-approval');
    expect(await refusal(roll.executeUpdate(resumeUpdate))).toBe('not paused');
    expect(await roll.executeUpdate(pauseUpdate)).toBe('waiting-for-approval');
    expect(await refusal(roll.executeUpdate(pauseUpdate))).toBe('already paused');
    await untilStatus(roll, 'paused');
    expect(await roll.executeUpdate(approveUpdate)).toBe('paused');

    await env.sleep(DAY);
    const paused = await progressOf(roll);
    expect(paused).toMatchObject({
      status: 'paused',
      paused: true,
      canary: { host: 'app1', approved: true },
    });
    expect(fleet.patched()).toEqual(['app1']);

    expect(await roll.executeUpdate(resumeUpdate)).toBe('paused');
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'] });
    expect(patchGap()).toBeGreaterThanOrEqual(DAY);
  });

  test('abort while app1 patches: app1 finishes and is readmitted, app2 never starts; a second abort or a pause is refused', async () => {
    const patch1 = gate();
    fleet.hooks.runPatch = () => patch1.opened;
    const roll = await startRoll(fleet, { canary: false });
    await untilHost(roll, 'app1', 'patching');
    expect(await roll.executeUpdate(abortUpdate, { args: [{ reason: 'customer event tonight' }] })).toBe(
      'running',
    );
    expect(await refusal(roll.executeUpdate(abortUpdate, { args: [{}] }))).toBe('already aborting');
    expect(await refusal(roll.executeUpdate(pauseUpdate))).toBe('the roll is aborting');
    patch1.open();

    const result = await roll.result();
    expect(result.status).toBe('aborted');
    expect(result.stopReason).toBe('aborted by ops: customer event tonight');
    expect(result.done).toEqual(['app1']);
    expect(result.notStarted).toEqual(['app2']);
    expect(result.hosts.app2).toMatchObject({
      state: 'not-started',
      leftAs: 'untouched',
      reason: 'aborted by ops: customer event tonight',
    });
    expect(fleet.patched()).toEqual(['app1']);
    expect(fleet.callsOf('setBackendState', { host: 'app2' })).toEqual([]);
    expect(routes()).toEqual(ALL_ACTIVE);
  });

  test('skipHost during the canary wait: a done or unknown host is refused, a pending one is left out untouched', async () => {
    const roll = await startRoll(fleet, { canary: true });
    await untilStatus(roll, 'waiting-for-approval');
    expect(await refusal(roll.executeUpdate(skipHostUpdate, { args: [{ host: 'app1' }] }))).toBe(
      'app1 is done: only a host whose patch has not started can be skipped',
    );
    expect(await refusal(roll.executeUpdate(skipHostUpdate, { args: [{ host: 'host9' }] }))).toBe(
      'host9 is not in this roll',
    );
    expect(await roll.executeUpdate(skipHostUpdate, { args: [{ host: 'app2' }] })).toBe('skipped');
    await roll.executeUpdate(approveUpdate);

    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1'], skipped: ['app2'] });
    expect(result.hosts.app2).toMatchObject({
      state: 'skipped',
      reason: 'skipped by ops',
      leftAs: 'untouched',
    });
    expect(fleet.patched()).toEqual(['app1']);
    expect(fleet.callsOf('setBackendState', { host: 'app2' })).toEqual([]);
  });

  test('skipHost of a host of the running batch, before its patch: taken out, then put back unpatched', async () => {
    // app1 and app2 in one batch (no site in common); the batch waits for one2's lock, which a
    // deploy holds, so app2 is skipped before its turn has started
    await fleet.reset(fleetOf('app1', 'app2'), [
      { siteId: 'one1', appHosts: ['app1'] },
      { siteId: 'one2', appHosts: ['app2'] },
    ]);
    const deploy = await fleet.start(heldOperation, 'deploy-one2', { siteId: 'one2', operation: 'deploy' });
    await until('one2 locked by the deploy', async () => !!(await deploy.query(heldOperationQuery)).granted);

    const roll = await startRoll(fleet, { canary: false, batchSize: 2 });
    await untilHost(roll, 'app2', 'waiting-for-locks');
    expect(await roll.executeUpdate(skipHostUpdate, { args: [{ host: 'app2' }] })).toBe('waiting-for-locks');
    await deploy.signal(finishSignal);

    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1'], skipped: ['app2'] });
    expect(result.hosts.app2).toMatchObject({
      state: 'skipped',
      reason: 'skipped by ops',
      leftAs: 'readmitted',
    });
    expect(fleet.patched()).toEqual(['app1']);
    // app2's single-server site went to the maintenance page and back
    expect(
      fleet
        .callsOf('putSiteRoute', { siteId: 'one2' })
        .map((c) => (c.input as { route: { mode: string } }).route.mode),
    ).toEqual(['maintenance', 'active']);
    expect(fleet.routeStates('one2')).toEqual({ mode: 'active', backends: ['app2 active'] });
  });
});

describe('the same controls as Signals', () => {
  test('pause, approve, resume as Signals steer the roll; Signals that do not apply are ignored', async () => {
    const roll = await startRoll(fleet, { canary: true });
    await untilStatus(roll, 'waiting-for-approval');
    await roll.signal(resumeSignal); // not paused: ignored
    await roll.signal(skipHostSignal, { host: 'host9' }); // not in the roll: ignored
    await roll.signal(skipHostSignal, { host: 'app1' }); // done: ignored
    await roll.signal(pauseSignal);
    await roll.signal(approveSignal);
    const paused = await untilStatus(roll, 'paused');
    expect(paused.canary.approved).toBe(true);
    expect(paused.hosts.app1!.state).toBe('done');
    expect(paused.skipped).toEqual([]);

    await env.sleep(DAY);
    expect(fleet.patched()).toEqual(['app1']);
    await roll.signal(resumeSignal);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'], skipped: [] });
  });

  test('abort and skipHost as Signals', async () => {
    const roll = await startRoll(fleet, { canary: true });
    await untilStatus(roll, 'waiting-for-approval');
    await roll.signal(skipHostSignal, { host: 'app2' });
    await until('app2 skipped', async () => (await progressOf(roll)).skipped.includes('app2'));
    await roll.signal(abortSignal, { reason: 'change freeze' });
    const result = await roll.result();
    expect(result).toMatchObject({
      status: 'aborted',
      stopReason: 'aborted by ops: change freeze',
      done: ['app1'],
      skipped: ['app2'],
    });
    expect(fleet.patched()).toEqual(['app1']);
  });
});
