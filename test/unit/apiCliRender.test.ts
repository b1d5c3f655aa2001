import type { OperationView } from '../../client/operations';
import { progressLines, sitesTable } from '../../cli/render';

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
