import { describeIssues } from '../../schema/common';
import { DEFAULT_PATCH_COMMAND, PatchRollInput, resolveCount } from '../../protocol/patchRoll';

/** The patchRoll input, as pasted into the Web UI: defaults, and every bad field named. */

const issues = (input: unknown) => {
  const r = PatchRollInput.safeParse(input);
  return r.success ? '' : describeIssues(r.error);
};

test('a minimal input gets safe defaults', () => {
  const cfg = PatchRollInput.parse({ hosts: { roles: ['app'] } });
  expect(cfg).toMatchObject({
    batchSize: 1,
    errorBudget: 0,
    canary: true,
    reboot: 'if-required',
    rebootCheck: ['test', '-e', '/run/reboot-required'],
  });
  // no command: each host's patchCommand from the inventory, else the default (runPatch decides)
  expect(cfg.patchCommand).toBeUndefined();
  expect(DEFAULT_PATCH_COMMAND).toEqual(['sh', '-c', 'apt-get update && apt-get -y upgrade']);
});

test('a full input is accepted as given', () => {
  const cfg = PatchRollInput.parse({
    hosts: { names: ['host2'], roles: ['app'], labels: { zone: 'a' } },
    batchSize: '25%',
    errorBudget: '10%',
    window: { notAfter: '2026-01-01T05:00:00+01:00', atCutoff: 'finish-batch' },
    canary: true,
    canaryWaitSeconds: 600,
    patchCommand: ['apt-get', '-y', 'upgrade'],
    reboot: 'never',
    triggeredBy: 'ops:alice',
  });
  expect(cfg.batchSize).toBe('25%');
  expect(cfg.window?.atCutoff).toBe('finish-batch');
});

test('every bad field is named', () => {
  const msg = issues({
    hosts: {},
    batchSize: 0,
    errorBudget: '150%',
    window: { notAfter: 'tomorrow morning' },
    canary: false,
    canaryWaitSeconds: 60,
    patchCommand: [],
    extra: 1,
  });
  expect(msg).toContain('hosts: say which hosts');
  expect(msg).toContain('batchSize');
  expect(msg).toContain('errorBudget');
  expect(msg).toContain('window.notAfter');
  expect(msg).toContain('patchCommand');
  expect(msg).toMatch(/extra|Unrecognized/);
});

test('canaryWaitSeconds without a canary is refused', () => {
  expect(issues({ hosts: { roles: ['app'] }, canary: false, canaryWaitSeconds: 5 })).toContain(
    'canaryWaitSeconds',
  );
});

test('host names and roles are checked', () => {
  expect(issues({ hosts: { names: ['Bad;Name'] } })).toContain('hosts.names.0');
  expect(issues({ hosts: { roles: ['kitchen'] } })).toContain('hosts.roles.0');
});

test('counts and percentages resolve against the selection', () => {
  expect(resolveCount(3, 10, 'up')).toBe(3);
  expect(resolveCount('25%', 10, 'up')).toBe(3);
  expect(resolveCount('25%', 10, 'down')).toBe(2);
  expect(resolveCount('10%', 30, 'up')).toBe(3); // not 4: 0.1 * 30 is 3.0000000000000004
  expect(resolveCount('100%', 7, 'up')).toBe(7);
  expect(resolveCount('0%', 7, 'down')).toBe(0);
  expect(resolveCount('1%', 7, 'up')).toBe(1);
});
