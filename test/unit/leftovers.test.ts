import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  deploySnapshotsToPrune,
  finalBackupsToPrune,
  listArgv,
  removeArgv,
} from '../../activities/backup/leftovers';
import {
  deploySnapshotName,
  finalBackupName,
  releaseOfDeploySnapshot,
  timeOfFinalBackup,
} from '../../protocol/ids';

/**
 * The deploy snapshots and a deprovision's final backups: their names, which of them go (pure), and
 * the list and remove scripts run here, locally, on a temporary tree (plain sh and findutils, as on
 * the hosts).
 */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-leftovers-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const run = (argv: string[]) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const touch = (root: string, file: string) => {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  fs.writeFileSync(path.join(root, file), 'x');
};

const c1 = 'a'.repeat(40);
const c2 = 'b'.repeat(40);
const c3 = 'c'.repeat(40);

test('names: a deploy snapshot carries its release, a final backup its time', () => {
  const run1 = '0f3a5c7e-1111-4222-8333-944455556666';
  expect(deploySnapshotName(c1, run1)).toBe(`deploy-${'a'.repeat(12)}-0f3a5c7e`);
  expect(releaseOfDeploySnapshot(deploySnapshotName(c1, run1))).toBe('a'.repeat(12));
  expect(releaseOfDeploySnapshot('before-test')).toBeUndefined();
  expect(releaseOfDeploySnapshot('final-20260301020304')).toBeUndefined();

  const at = new Date('2026-03-01T02:03:04.567Z');
  expect(finalBackupName(at)).toBe('final-20260301020304');
  expect(timeOfFinalBackup(finalBackupName(at))?.toISOString()).toBe('2026-03-01T02:03:04.000Z');
  for (const not of ['final-2026030102030', 'final-20261301020304', 'deploy-x', 'final-20260301020304.tar'])
    expect(timeOfFinalBackup(not)).toBeUndefined();
});

test('deploy snapshots go with their releases; other snapshots and other databases are not touched', () => {
  const snap = (db: string, commit: string, run = '01234567') =>
    `${db}/deploy-${commit.slice(0, 12)}-${run}.sql.gz`;
  const listed = [
    snap('site_acme', c1),
    snap('site_acme', c2),
    snap('site_acme', c2, '89abcdef'), // a second deploy of the same release (one that failed, say)
    snap('site_acme', c3),
    'site_acme/final-20260301020304.sql.gz',
    'site_acme/before-test.sql.gz',
    snap('site_other', c1),
  ];
  expect(deploySnapshotsToPrune(listed, 'site_acme', [c3, c2])).toEqual([
    `deploy-${'a'.repeat(12)}-01234567`,
  ]);
  // deprovision: every deploy snapshot of the site, nothing else
  expect(deploySnapshotsToPrune(listed, 'site_acme', [])).toEqual([
    `deploy-${'a'.repeat(12)}-01234567`,
    `deploy-${'b'.repeat(12)}-01234567`,
    `deploy-${'b'.repeat(12)}-89abcdef`,
    `deploy-${'c'.repeat(12)}-01234567`,
  ]);
});

test('final backups go once older than the time given, by the time in their name', () => {
  const listed = [
    'site_gone/final-20260101000000.sql.gz',
    'site_gone/final-20260301000000.sql.gz',
    'site_gone/deploy-aaaaaaaaaaaa-01234567.sql.gz',
    'site_gone/final-nottime.sql.gz',
    'gone/final-20260101000000.tar.gz',
  ];
  expect(finalBackupsToPrune(listed, '.sql.gz', new Date('2026-02-01T00:00:00Z'))).toEqual([
    { dir: 'site_gone', name: 'final-20260101000000', file: 'site_gone/final-20260101000000.sql.gz' },
  ]);
  expect(finalBackupsToPrune(listed, '.tar.gz', new Date('2026-02-01T00:00:00Z')).map((f) => f.file)).toEqual(
    ['gone/final-20260101000000.tar.gz'],
  );
});

test('the scripts list the files under a root (or one directory of it), remove exactly those named, and the directories they empty', () => {
  const root = path.join(tmp, 'snapshots');
  expect(run(listArgv(root, '.sql.gz'))).toBe(''); // no root yet: nothing, not an error
  for (const f of [
    'site_a/final-20260101000000.sql.gz',
    'site_a/final-20260101000000.sql.gz.sha256',
    'site_b/deploy-aaaaaaaaaaaa-01234567.sql.gz',
    'site_b/deploy-aaaaaaaaaaaa-01234567.sql.gz.sha256',
    'site_b/.deploy-x.sql.gz.partial',
  ])
    touch(root, f);
  fs.mkdirSync(path.join(root, 'site_b', 'nested'));
  touch(root, 'site_b/nested/deep.sql.gz');
  expect(run(listArgv(root, '.sql.gz')).split('\n').filter(Boolean).sort()).toEqual([
    'site_a/final-20260101000000.sql.gz',
    'site_b/deploy-aaaaaaaaaaaa-01234567.sql.gz',
  ]);
  expect(run(listArgv(root, '.sql.gz', 'site_b'))).toBe('site_b/deploy-aaaaaaaaaaaa-01234567.sql.gz\n');
  expect(run(listArgv(root, '.sql.gz', 'site_c'))).toBe('');

  const gone = ['site_a/final-20260101000000.sql.gz', 'site_a/final-20260101000000.sql.gz.sha256'];
  expect(run(removeArgv(root, gone))).toBe(gone.map((f) => `removed ${f}\n`).join(''));
  expect(fs.existsSync(path.join(root, 'site_a'))).toBe(false); // emptied: removed
  expect(run(removeArgv(root, gone))).toBe(''); // again: nothing there, nothing said
  run(removeArgv(root, ['site_b/deploy-aaaaaaaaaaaa-01234567.sql.gz']));
  expect(fs.readdirSync(path.join(root, 'site_b')).sort()).toEqual([
    '.deploy-x.sql.gz.partial',
    'deploy-aaaaaaaaaaaa-01234567.sql.gz.sha256',
    'nested',
  ]);
});

test('nothing outside a root directory can be named for removal', () => {
  for (const bad of [
    '../etc/passwd',
    'site_a/../../x',
    '/etc/passwd',
    'site_a/',
    'a/b/c',
    'site_a/..',
    '-rf/x',
    'x',
  ])
    expect(() => removeArgv('/srv/qm/snapshots', [bad])).toThrow(/not a file to prune/);
  expect(() => listArgv('/srv/qm/snapshots', '.sql.gz', '../x')).toThrow(/not a directory/);
});
