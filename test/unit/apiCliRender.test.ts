import type { OperationView } from '../../client/operations';
import { progressLines, siteLines, sitesTable } from '../../cli/render';

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

  test('the end: result or error', () => {
    const c = running('routes', ['a']);
    expect(progressLines(c, { ...base, state: 'COMPLETED', result: { state: 'active' } })).toEqual([
      'COMPLETED  {"state":"active"}',
    ]);
    expect(
      progressLines(c, {
        ...base,
        state: 'FAILED',
        error: { type: 'ProvisionFailed', message: 'failed at "routes"' },
      }),
    ).toEqual(['FAILED  ProvisionFailed: failed at "routes"']);
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

describe('qm status: a failed site says why, what is out of line, and how to repair it', () => {
  test('the failure, its lines, the snapshot due, the repair', () => {
    const lines = siteLines('acme', {
      status: 'RUNNING',
      view: {
        queue: [],
        record: {
          siteId: 'acme',
          state: 'failed',
          release: 'initial',
          failure: {
            operation: 'deploy',
            workflowId: 'deploy:acme:k1',
            at: '2026-03-01T01:00:00.000Z',
            step: 'switch app servers',
            host: 'host3',
            cause: 'cannot reach host3',
            outOfLine: ['host3: unreachable', 'host3: drained in every route until it is repaired'],
            stateBefore: 'active',
            databaseSnapshot: 'deploy-abc',
          },
        },
      },
    });
    expect(lines).toEqual([
      'site acme: failed (site workflow RUNNING)',
      '  release    initial',
      '  failed     deploy deploy:acme:k1 at "switch app servers" on host3 (2026-03-01T01:00:00.000Z): cannot reach host3',
      '  out of line  host3: unreachable',
      '  out of line  host3: drained in every route until it is repaired',
      '  database   must go back to snapshot deploy-abc',
      '  repair     qm repair acme (back to active once nothing is out of line)',
    ]);
  });
});
