import type { OperationView } from '../../client/operations';
import type { RunView } from '../../client/runs';
import { endedWell } from '../../client/runs';
import { progressLines, runLines, sitesTable } from '../../cli/render';
import type { HostProgress, PatchRollProgress } from '../../protocol/patchRoll';

const base: OperationView = {
  id: 'provision:acme:k1',
  operation: 'provision',
  siteId: 'acme',
  state: 'RUNNING',
  startedAt: '2025-01-01T00:00:00.000Z',
};
const running = (
  step: string,
  done: string[],
  hosts: Record<string, string> = {},
  waitingForLock = false,
) => ({
  ...base,
  queued: waitingForLock,
  progress: { operation: 'provision', siteId: 'acme', waitingForLock, step, done, hosts },
});

describe('qm: following an operation prints what changed', () => {
  test('first look: the header, the lock wait', () => {
    expect(progressLines(undefined, running('starting', [], {}, true))).toEqual([
      'provision:acme:k1  RUNNING  (started 2025-01-01T00:00:00.000Z)',
      '  waiting for the site lock',
    ]);
  });

  test('every step once, in order, even those begun and finished between two looks', () => {
    const a = running('place', ['load profile']);
    expect(progressLines(running('starting', [], {}, true), a)).toEqual([
      '  got the site lock',
      '  step 1: load profile',
      '  step 2: place',
    ]);
    const b = running('app containers', ['load profile', 'place', 'database', 'files storage'], {
      host2: 'starting app',
    });
    expect(progressLines(a, b)).toEqual([
      '  step 3: database',
      '  step 4: files storage',
      '  step 5: app containers',
      '    host2: starting app',
    ]);
    const c = running('app containers', b.progress.done, { host2: 'app healthy' });
    expect(progressLines(b, c)).toEqual(['    host2: app healthy']);
    expect(progressLines(c, c)).toEqual([]);
    expect(progressLines(c, running('done', [...c.progress.done, 'app containers']))).toEqual([]);
  });

  test('the end: result or error, with its step, host, activity and root cause', () => {
    const c = running('routes', ['a']);
    expect(progressLines(c, { ...base, state: 'COMPLETED', result: { state: 'active' } })).toEqual([
      'COMPLETED  {"state":"active"}',
    ]);
    const root = { type: 'HostKeyMismatch', message: 'host key of host1 is SHA256:x: refusing to connect' };
    expect(
      progressLines(c, {
        ...base,
        state: 'FAILED',
        error: {
          type: 'ProvisionFailed',
          message: `provisioning acme failed at "routes" on host1: ${root.message}`,
          step: 'routes',
          host: 'host1',
          activityType: 'putSiteRoute',
          rootCause: root,
        },
      }),
    ).toEqual([
      `FAILED  ProvisionFailed: provisioning acme failed at "routes" on host1: ${root.message}`,
      '  step        routes',
      '  host        host1',
      '  activity    putSiteRoute',
      `  root cause  HostKeyMismatch: ${root.message}`,
    ]);
    // a refusal is its own root cause: said once
    const refusal = { type: 'Conflict', message: 'site acme is new' };
    expect(progressLines(c, { ...base, state: 'FAILED', error: { ...refusal, rootCause: refusal } })).toEqual(
      ['FAILED  Conflict: site acme is new'],
    );
    expect(progressLines(c, { ...base, state: 'TERMINATED' })).toEqual(['TERMINATED']);
  });

  test('no worker answering is said once', () => {
    const lost = { ...base, progress: null, progressUnavailable: 'no worker answered within 5 s' };
    expect(progressLines(running('place', []), lost)).toEqual([
      '  (no progress: no worker answered within 5 s)',
    ]);
    expect(progressLines(lost, lost)).toEqual([]);
  });
});

test('qm sites: an aligned table', () => {
  expect(
    sitesTable([
      {
        siteId: 'acme',
        state: 'active',
        release: 'initial',
        hosts: ['host1', 'host2'],
        operation: 'idle',
        workflowStatus: 'RUNNING',
        customerId: 'c1',
      },
      { siteId: 'b', state: 'deleted', hosts: [], workflowStatus: 'COMPLETED' },
    ]),
  ).toEqual([
    'SITE  STATE    RELEASE  HOSTS        OPERATION  CUSTOMER',
    'acme  active   initial  host1,host2  idle       c1',
    'b     deleted  -        -            -          -',
  ]);
});

describe('qm op: every kind of run, not only site operations', () => {
  const at = { startedAt: '2026-12-06T01:00:00.000Z' };
  const host = (state: HostProgress['state'], batch: number, reason?: string): HostProgress => ({
    state,
    batch,
    sites: [],
    ...(reason ? { reason } : {}),
  });
  const rollProgress = (over: Partial<PatchRollProgress>): PatchRollProgress => ({
    operation: 'patch-roll',
    rollId: 'r1',
    status: 'running',
    paused: false,
    waitingForLock: false,
    batches: [['host1'], ['host2', 'host3']],
    currentBatch: 1,
    done: [],
    failed: [],
    remaining: [],
    skipped: [],
    heldBack: [],
    notStarted: [],
    errorBudget: { allowed: 1, used: 0 },
    canary: { host: 'host1', approved: false },
    hosts: { host1: host('patching', 1), host2: host('pending', 2), host3: host('pending', 2) },
    ...over,
  });
  const roll = (progress: PatchRollProgress): RunView => ({
    kind: 'patch-roll',
    id: 'patch-2026-12',
    workflowType: 'patchRoll',
    state: 'RUNNING',
    ...at,
    progress,
  });

  test('a patch roll: status, batch, canary and each host, then only what changed', () => {
    const a = roll(rollProgress({}));
    expect(runLines(undefined, a)).toEqual([
      'patch-2026-12  RUNNING  (patch roll, started 2026-12-06T01:00:00.000Z)',
      '  status running, batch 1/2, error budget 0/1 used',
      '  canary host1: waiting for approve',
      '    host1: patching (batch 1)',
      '    host2: pending (batch 2)',
      '    host3: pending (batch 2)',
    ]);
    const b = roll(
      rollProgress({
        status: 'waiting-for-approval',
        hosts: { ...rollProgress({}).hosts, host1: host('done', 1) },
      }),
    );
    expect(runLines(a, b)).toEqual([
      '  status waiting-for-approval, batch 1/2, error budget 0/1 used',
      '    host1: done (batch 1)',
    ]);
    const ended: RunView = {
      kind: 'patch-roll',
      id: 'patch-2026-12',
      workflowType: 'patchRoll',
      state: 'COMPLETED',
      ...at,
      result: {
        rollId: 'r1',
        status: 'completed',
        done: ['host1', 'host2'],
        failed: ['host3'],
        skipped: [],
        heldBack: [],
        notStarted: [],
        hosts: { host3: { ...host('failed', 2, 'host3: apt-get exited 100'), leftAs: 'drained' } },
      },
    };
    expect(runLines(b, ended)).toEqual([
      'COMPLETED  roll completed: done host1, host2; failed host3; skipped -; held back -; not started -',
      '    host3: failed: host3: apt-get exited 100 (left drained)',
    ]);
    expect(endedWell(ended)).toBe(false); // a host failed: qm op exits 1
    expect(endedWell(b)).toBeUndefined();
  });

  test('a night of backups and a fleet check: progress, then the result', () => {
    const night: RunView = {
      kind: 'nightly-backups',
      id: 'nightly-backups-2026-12-06T01:00:00Z',
      workflowType: 'nightlyBackups',
      state: 'RUNNING',
      ...at,
      progress: {
        night: '2026-12-06',
        total: 3,
        waiting: 1,
        running: { host1: ['acme'] },
        succeeded: 1,
        failed: [],
        alreadyDone: 0,
        skipped: [{ siteId: 'beta', state: 'failed', reason: 'failed: ops must repair it first' }],
      },
    };
    expect(runLines(undefined, night)).toEqual([
      'nightly-backups-2026-12-06T01:00:00Z  RUNNING  (nightly backups, started 2026-12-06T01:00:00.000Z)',
      '  night 2026-12-06: 3 site(s), 1 waiting, 1 succeeded, 0 already done',
      '    host1: backing up acme',
      '    beta: not backed up: failed: ops must repair it first',
    ]);
    const check: RunView = {
      kind: 'fleet-check',
      id: 'check-1',
      workflowType: 'checkFleet',
      state: 'COMPLETED',
      ...at,
      result: { healthy: ['host1', 'host2'], failed: [{ host: 'host3', error: 'ssh: connection refused' }] },
    };
    expect(runLines(undefined, check)).toEqual([
      'check-1  COMPLETED  (fleet check, started 2026-12-06T01:00:00.000Z)',
      'COMPLETED  healthy host1, host2; failed host3',
      '    host3: ssh: connection refused',
    ]);
    expect(endedWell(check)).toBe(false);
    expect(endedWell({ ...check, result: { healthy: ['host1'], failed: [] } })).toBe(true);
  });
});
