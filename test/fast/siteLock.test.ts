import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { abortUpdate } from '../../protocol/patchRoll';
import {
  requestLockSignal,
  siteQuery,
  siteWorkflowId,
  updateRecordSignal,
  type LockHolder,
} from '../../protocol/site';
import { finishSignal, heldOperation, heldOperationQuery } from './workflows';
import {
  fleetOf,
  gate,
  lockView,
  progressOf,
  startFastEnv,
  startFastWorker,
  startRoll,
  terminateQuiet,
  until,
  untilHost,
  type FakeFleet,
} from './support';

/**
 * The site's lock, held by its `site` workflow: operations queue on it in the order they asked, a
 * release hands it to the next, a waiter that withdraws or ends is passed over, a holder that dies
 * is noticed; and a patch roll among other operations (it waits, gives up, keeps a lock between
 * batches only if nobody waits). The operations are real workflows (test/fast/workflows.ts:
 * heldOperation, through lib/siteLock.ts like a deploy), on the time-skipping server.
 */

let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startFastWorker>>;
let fleet: FakeFleet;

beforeAll(async () => {
  env = await startFastEnv();
  worker = await startFastWorker(env, 'locks');
  fleet = worker.fleet;
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

type Op = Awaited<ReturnType<typeof startOperation>>;

function startOperation(workflowId: string, operation: string, siteId = 'acme') {
  return fleet.start(heldOperation, workflowId, { siteId, operation });
}

const holderOf = (op: Op, operation: string): LockHolder => ({
  workflowId: op.workflowId,
  runId: op.firstExecutionRunId,
  operation,
});

const grantsTo = async (op: Op) =>
  ((await op.fetchHistory()).events ?? []).filter(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'lockGranted',
  ).length;

/** How often the run `runId` asked for the site's lock. */
const lockRequests = (siteId: string, runId: string) =>
  fleet
    .callsOf('requestSiteLock', { siteId })
    .filter((c) => (c.input as { holder: LockHolder }).holder.runId === runId).length;

/** Until the site's lock is held by `holder` (a workflow id, or undefined) with `queue` waiting. */
function untilLock(siteId: string, holder: string | undefined, queue: string[]) {
  return until(`${siteId}: ${holder ?? 'nobody'} holding, [${queue.join(', ')}] waiting`, async () => {
    const v = await lockView(fleet.client, siteId);
    return v.holder === holder && JSON.stringify(v.queue) === JSON.stringify(queue);
  });
}

describe('the site workflow’s lock', () => {
  beforeEach(() => fleet.reset(fleetOf('app1'), [{ siteId: 'acme', appHosts: ['app1'] }]));

  test('operations queue in the order they asked; each release hands the lock to the next', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    const c = await startOperation('op-c', 'suspend');
    await untilLock('acme', 'op-a', ['op-b', 'op-c']);
    expect(await b.query(heldOperationQuery)).toMatchObject({ waitingForLock: true });
    const site = fleet.client.workflow.getHandle(siteWorkflowId('acme'));
    expect((await site.describe()).searchAttributes.Operation).toEqual(['deploy']);

    await a.signal(finishSignal);
    const record = await a.result();
    expect(record).toMatchObject({ siteId: 'acme', state: 'active' }); // the grant carries the record
    await untilLock('acme', 'op-b', ['op-c']);
    expect((await b.query(heldOperationQuery)).granted).toMatchObject({ siteId: 'acme', state: 'active' });
    expect((await c.query(heldOperationQuery)).waitingForLock).toBe(true);
    expect((await site.describe()).searchAttributes.Operation).toEqual(['backup']);

    await b.signal(finishSignal);
    await untilLock('acme', 'op-c', []);
    await c.signal(finishSignal);
    await c.result();
    await untilLock('acme', undefined, []);
    expect((await site.describe()).searchAttributes.Operation).toEqual(['idle']);
    for (const op of [a, b, c]) expect(await grantsTo(op)).toBe(1);
  });

  test('a waiter that withdraws (cancelled while queued) leaves the queue; the lock passes it over', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    const c = await startOperation('op-c', 'restore');
    await untilLock('acme', 'op-a', ['op-b', 'op-c']);

    await b.cancel();
    expect(await b.result().catch((e: unknown) => e)).toBeInstanceOf(WorkflowFailedError);
    await untilLock('acme', 'op-a', ['op-c']);

    await a.signal(finishSignal);
    await untilLock('acme', 'op-c', []);
    expect(await grantsTo(b)).toBe(0);
    await c.signal(finishSignal);
    await untilLock('acme', undefined, []);
  });

  test('a waiter that ended without leaving the queue is passed over at its turn', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    const c = await startOperation('op-c', 'restore');
    await untilLock('acme', 'op-a', ['op-b', 'op-c']);
    await terminateQuiet(b); // no chance to withdraw
    expect((await lockView(fleet.client, 'acme')).queue).toEqual(['op-b', 'op-c']);

    await a.signal(finishSignal);
    await untilLock('acme', 'op-c', []);
    await c.signal(finishSignal);
    await untilLock('acme', undefined, []);
  });

  test('a holder that dies without releasing: the site notices at its next check (2 minutes) and hands the lock on, not before', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    await terminateQuiet(a);

    await env.sleep(100_000);
    expect(await lockView(fleet.client, 'acme')).toEqual({ holder: 'op-a', queue: ['op-b'] });
    await env.sleep(30_000);
    await untilLock('acme', 'op-b', []);
    await b.signal(finishSignal);
    await untilLock('acme', undefined, []);
  });

  test('a request repeated (a retried activity) queues once; the holder’s own repeat gets the grant again', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    const site = fleet.client.workflow.getHandle(siteWorkflowId('acme'));

    await site.signal(requestLockSignal, holderOf(b, 'backup'));
    await site.signal(requestLockSignal, holderOf(a, 'deploy'));
    await until('the grant sent again', async () => (await grantsTo(a)) === 2);
    expect(await lockView(fleet.client, 'acme')).toEqual({ holder: 'op-a', queue: ['op-b'] });

    await a.signal(finishSignal);
    await untilLock('acme', 'op-b', []);
    await b.signal(finishSignal);
    await untilLock('acme', undefined, []);
    expect(await grantsTo(b)).toBe(1);
  });

  test('only the holder may change the record', async () => {
    const a = await startOperation('op-a', 'deploy');
    await untilLock('acme', 'op-a', []);
    const b = await startOperation('op-b', 'backup');
    await untilLock('acme', 'op-a', ['op-b']);
    const site = fleet.client.workflow.getHandle(siteWorkflowId('acme'));

    await site.signal(updateRecordSignal, { holder: holderOf(b, 'backup'), patch: { release: 'from-b' } });
    await site.signal(updateRecordSignal, {
      holder: holderOf(a, 'deploy'),
      patch: { release: 'from-a', siteId: 'other' },
    });
    await until('the holder’s change', async () => (await site.query(siteQuery)).record.release === 'from-a');
    expect((await site.query(siteQuery)).record).toMatchObject({ siteId: 'acme', release: 'from-a' });
    expect((await site.describe()).searchAttributes.Release).toEqual(['from-a']);
    await a.signal(finishSignal);
    await b.signal(finishSignal);
    await untilLock('acme', undefined, []);
  });
});

describe('a patch roll among other operations', () => {
  beforeEach(() =>
    fleet.reset(fleetOf('app1', 'app2'), [
      { siteId: 'multi', appHosts: ['app1', 'app2'] },
      { siteId: 'one1', appHosts: ['app1'] },
      { siteId: 'one2', appHosts: ['app2'] },
    ]),
  );

  test('the roll waits for a lock a deploy holds, touching nothing, and goes on once it is released', async () => {
    const deploy = await startOperation('deploy-multi', 'deploy', 'multi');
    await untilLock('multi', 'deploy-multi', []);
    const roll = await startRoll(fleet, { canary: false });
    const waiting = await untilHost(roll, 'app1', 'waiting-for-locks');
    expect(waiting.waitingForLock).toBe(true);
    await untilLock('multi', 'deploy-multi', [roll.workflowId]);
    expect(fleet.callsOf('setBackendState')).toEqual([]);

    await deploy.signal(finishSignal);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'] });
    expect(fleet.patched()).toEqual(['app1', 'app2']);
    await untilLock('multi', undefined, []);
  });

  test('between batches a lock nobody waits for is kept (asked for once); an operation that queued meanwhile goes first, then the roll goes on', async () => {
    // alone: multi's lock is asked for once for both batches, and released at the end
    const alone = await (await startRoll(fleet, { canary: false })).result();
    expect(alone.done).toEqual(['app1', 'app2']);
    expect(lockRequests('multi', alone.rollId)).toBe(1);
    await untilLock('multi', undefined, []);

    // a deploy asks for multi while app1 patches: it gets the lock after app1's batch
    fleet.calls = []; // this roll's calls only
    const patch1 = gate();
    fleet.hooks.runPatch = (host) => (host === 'app1' ? patch1.opened : undefined);
    const roll = await startRoll(fleet, { canary: false });
    await untilHost(roll, 'app1', 'patching');
    const deploy = await startOperation('deploy-multi', 'deploy', 'multi');
    await untilLock('multi', roll.workflowId, ['deploy-multi']);
    patch1.open();
    await until('the deploy holding multi', async () => !!(await deploy.query(heldOperationQuery)).granted);
    await untilHost(roll, 'app2', 'waiting-for-locks');
    expect(fleet.patched()).toEqual(['app1']);

    await deploy.signal(finishSignal);
    const result = await roll.result();
    expect(result).toMatchObject({ status: 'completed', done: ['app1', 'app2'] });
    expect(lockRequests('multi', result.rollId)).toBe(2);
    await untilLock('multi', undefined, []);
  });

  test('abort while the roll waits for a lock: it leaves the queue and touches nothing', async () => {
    const deploy = await startOperation('deploy-multi', 'deploy', 'multi');
    await untilLock('multi', 'deploy-multi', []);
    const roll = await startRoll(fleet, { canary: false });
    await untilLock('multi', 'deploy-multi', [roll.workflowId]);
    expect(await roll.executeUpdate(abortUpdate, { args: [{ reason: 'deploy first' }] })).toBe('running');

    const result = await roll.result();
    expect(result).toMatchObject({ status: 'aborted', stopReason: 'aborted by ops: deploy first', done: [] });
    expect(result.notStarted).toEqual(['app1', 'app2']);
    for (const h of ['app1', 'app2']) expect(result.hosts[h]!.leftAs).toBe('untouched');
    expect(await lockView(fleet.client, 'multi')).toEqual({ holder: 'deploy-multi', queue: [] });
    expect(fleet.callsOf('setBackendState')).toEqual([]);
    expect(fleet.patched()).toEqual([]);
    await deploy.signal(finishSignal);
    await untilLock('multi', undefined, []);
  });

  test('the window closes while the roll waits for a lock: it gives up at the cutoff, not before, and leaves the queue', async () => {
    const deploy = await startOperation('deploy-multi', 'deploy', 'multi');
    await untilLock('multi', 'deploy-multi', []);
    const notAfter = new Date((await env.currentTimeMs()) + 600_000).toISOString();
    const roll = await startRoll(fleet, { canary: false, window: { notAfter } });
    await untilLock('multi', 'deploy-multi', [roll.workflowId]);
    await env.sleep(300_000);
    expect((await progressOf(roll)).hosts.app1!.state).toBe('waiting-for-locks');

    await env.sleep(400_000);
    const result = await roll.result();
    expect(result).toMatchObject({
      status: 'stopped',
      stopReason: `the maintenance window closed at ${notAfter}`,
      done: [],
      notStarted: ['app1', 'app2'],
    });
    expect(await lockView(fleet.client, 'multi')).toEqual({ holder: 'deploy-multi', queue: [] });
    expect(fleet.patched()).toEqual([]);
    await deploy.signal(finishSignal);
    await untilLock('multi', undefined, []);
  });
});
