import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  archiveFilesArgv,
  BackupExit,
  checkSumsArgv,
  commitArgv,
  digestArgv,
  listBackupsArgv,
  parseDigest,
  receiveArgv,
  restoreFilesArgv,
  verifyFilesArgv,
} from '../../activities/backup/commands';
import { compareRowCounts } from '../../activities/backup/database';
import { verifyDatabaseName } from '../../activities/backup/layout';
import { BackupId, backupIdFor, fnv1a, timeOfBackupId } from '../../protocol/ids';
import { offsetMs } from '../../workflows/nightlyBackups';

/**
 * The backup scripts run here, locally, on temporary directories (they are plain bash and
 * coreutils, as on the hosts); the pure helpers beside them.
 */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-backup-unit-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(argv: string[], stdin?: string | Buffer) {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: stdin, encoding: 'buffer' });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

test('receive writes aside and hashes; only commit makes the artifact visible, and sweeps older partials', () => {
  const dir = path.join(tmp, 'receive');
  const data = Buffer.alloc(300_000, 'x');
  const first = run(receiveArgv(dir, 'db.sql.gz'), data);
  const second = run(receiveArgv(dir, 'db.sql.gz'), data); // an attempt that "died" before committing
  expect(first.code).toBe(0);
  const [tmpFile, sum, bytes] = first.stdout.trim().split(' ');
  expect([sum, Number(bytes)]).toEqual([sha(data), data.length]);
  expect(fs.existsSync(path.join(dir, 'db.sql.gz'))).toBe(false);
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);

  expect(run(commitArgv(dir, 'db.sql.gz', tmpFile!)).code).toBe(0);
  expect(sha(fs.readFileSync(path.join(dir, 'db.sql.gz')))).toBe(sha(data));
  expect(fs.readdirSync(dir)).toEqual(['db.sql.gz']); // the other attempt's partial is gone
  // that other attempt cannot commit any more, nor can a path outside the directory be renamed in
  expect(run(commitArgv(dir, 'db.sql.gz', second.stdout.split(' ')[0]!)).code).toBe(BackupExit.Missing);
  expect(run(commitArgv(dir, 'db.sql.gz', '/etc/passwd')).code).toBe(2);
});

test('archive → verify → restore the files of a tree with awkward names, modes and links', () => {
  const root = path.join(tmp, 'files');
  const site = path.join(root, 'acme');
  fs.mkdirSync(path.join(site, 'sub dir', 'deep'), { recursive: true });
  fs.writeFileSync(path.join(site, 'a.txt'), 'hello\n');
  fs.chmodSync(path.join(site, 'a.txt'), 0o600);
  fs.writeFileSync(path.join(site, 'sub dir', "it's $(x).txt"), 'y');
  fs.writeFileSync(path.join(site, 'sub dir', 'deep', 'big.bin'), Buffer.alloc(100_000, 7));
  fs.symlinkSync('a.txt', path.join(site, 'link'));
  const backups = path.join(tmp, 'backups', 'acme', 'b1');

  const made = run(archiveFilesArgv(site, backups, 'files.tar.gz'));
  expect(made.code).toBe(0);
  const [archiveSha, archiveBytes, entries, files, fileBytes] = made.stdout.trim().split(' ');
  const archive = path.join(backups, 'files.tar.gz');
  expect(sha(fs.readFileSync(archive))).toBe(archiveSha);
  expect(Number(archiveBytes)).toBe(fs.statSync(archive).size);
  expect([Number(entries), Number(files), Number(fileBytes)]).toEqual([7, 3, 6 + 1 + 100_000]); // 3 dirs, 3 files, 1 link

  const live = parseDigest(run(digestArgv(site)).stdout);
  const verified = run(verifyFilesArgv(archive, archiveSha!, path.join(tmp, 'scratch'), 'acme'));
  expect(verified.code).toBe(0);
  expect(parseDigest(verified.stdout)).toEqual(live);
  expect(fs.existsSync(path.join(tmp, 'scratch'))).toBe(false);

  // damage the tree, restore it: the same digest as before, the staging gone
  fs.rmSync(path.join(site, 'a.txt'));
  fs.writeFileSync(path.join(site, 'junk'), 'junk');
  fs.chmodSync(path.join(site, 'sub dir', "it's $(x).txt"), 0o777);
  expect(parseDigest(run(digestArgv(site)).stdout).digest).not.toBe(live.digest);
  const staging = path.join(root, '.restore-acme');
  const restored = run(restoreFilesArgv(archive, archiveSha!, site, staging));
  expect(restored.code).toBe(0);
  expect(parseDigest(restored.stdout)).toEqual(live);
  expect(fs.existsSync(staging)).toBe(false);
  // again: the same tree (safe twice), also after a run cut short between its two renames
  fs.renameSync(site, path.join(tmp, 'moved-away'));
  expect(parseDigest(run(restoreFilesArgv(archive, archiveSha!, site, staging)).stdout)).toEqual(live);

  // a tampered archive: verify and restore both refuse, and the tree is not touched
  const bytes = fs.readFileSync(archive);
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
  fs.writeFileSync(archive, bytes);
  expect(run(verifyFilesArgv(archive, archiveSha!, path.join(tmp, 'scratch'), 'acme')).code).toBe(
    BackupExit.Corrupt,
  );
  fs.writeFileSync(path.join(site, 'after'), 'kept');
  const refused = run(restoreFilesArgv(archive, archiveSha!, site, staging));
  expect(refused.code).toBe(BackupExit.Corrupt);
  expect(refused.stderr).toContain('the manifest says');
  expect(fs.readFileSync(path.join(site, 'after'), 'utf8')).toBe('kept');
});

test('a missing files directory is Missing, not an empty archive', () => {
  const r = run(archiveFilesArgv(path.join(tmp, 'nope'), path.join(tmp, 'b2'), 'files.tar.gz'));
  expect(r.code).toBe(BackupExit.Missing);
});

test('check sums reads each artifact back and says ok, mismatch or missing', () => {
  const dir = path.join(tmp, 'sums');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'a'), 'A');
  fs.writeFileSync(path.join(dir, 'b'), 'B');
  const r = run(checkSumsArgv(dir, { a: sha('A'), b: sha('not B'), c: sha('C') }));
  expect(r.stdout.split('\n').map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
    'ok a',
    'mismatch b',
    'missing c',
    '',
  ]);
});

test('list backups: each directory with its manifest (base64) or - when it never finished', () => {
  const site = path.join(tmp, 'list');
  fs.mkdirSync(path.join(site, '20260101T010000Z-aaaaaa'), { recursive: true });
  fs.mkdirSync(path.join(site, '20260102T010000Z-bbbbbb'), { recursive: true });
  fs.writeFileSync(path.join(site, '20260102T010000Z-bbbbbb', 'manifest.json'), '{"x": 1}\n');
  const lines = run(listBackupsArgv(site)).stdout.trim().split('\n');
  expect(lines.map((l) => l.split(' ')[0])).toEqual(['20260101T010000Z-aaaaaa', '20260102T010000Z-bbbbbb']);
  expect(lines[0]!.endsWith(' -')).toBe(true);
  expect(Buffer.from(lines[1]!.split(' ')[2]!, 'base64').toString()).toBe('{"x": 1}\n');
  expect(run(listBackupsArgv(path.join(tmp, 'no-such-site'))).stdout).toBe('');
});

test('row counts: exact tables compared, tables written during the dump reported, strangers flagged', () => {
  const artifact = {
    rowCounts: { node: 10, users: 3 },
    changedDuringDump: { cache: { before: 5, after: 9 }, created_meanwhile: { before: null, after: 1 } },
  };
  expect(compareRowCounts(artifact, { node: 10, users: 3, cache: 7 })).toEqual({
    problems: [],
    changedTablesRestored: { cache: 7 },
  });
  expect(compareRowCounts(artifact, { node: 9, extra: 1 }).problems).toEqual([
    'table node has 9 rows, the manifest 10',
    'table users is missing (the manifest has 3 rows)',
    'table cache is missing (written during the dump)',
    'table extra is not in the manifest',
  ]);
});

test('backup ids and night offsets are deterministic, valid and spread', () => {
  const t = new Date('2026-03-01T02:03:04.567Z');
  const id = backupIdFor(t, 'backup-acme/scheduled');
  expect(id).toBe(backupIdFor(t, 'backup-acme/scheduled'));
  expect(id).toMatch(/^20260301T020304Z-[0-9a-z]{6}$/);
  expect(BackupId.safeParse(id).success).toBe(true);
  expect(backupIdFor(t, 'other')).not.toBe(id);
  expect(timeOfBackupId(id)).toBe('2026-03-01T02:03:04.000Z');
  for (const bad of ['../etc', '20260301T020304Z-ABCDEF', '20260301T020304Z-abcdef/..', ''])
    expect(BackupId.safeParse(bad).success).toBe(false);
  expect(fnv1a('')).toBe(0x811c9dc5);
  expect(fnv1a('a')).toBe(0xe40c292c); // the published FNV-1a test vector

  const offsets = Array.from({ length: 200 }, (_, i) => offsetMs(`site-${i}`, 240));
  expect(offsets.every((o) => o >= 0 && o < 240 * 60_000)).toBe(true);
  expect(offsetMs('site-1', 240)).toBe(offsets[1]);
  expect(offsetMs('site-1', 0)).toBe(0);
  // spread: every hour of the 4-hour window gets a fair share (200 sites, about 50 each)
  const perHour = [0, 1, 2, 3].map((h) => offsets.filter((o) => Math.floor(o / 3_600_000) === h).length);
  expect(Math.min(...perHour)).toBeGreaterThan(30);
  expect(verifyDatabaseName('acme')).toMatch(/^qm_verify_[0-9a-f]{12}$/);
  expect(verifyDatabaseName('acme')).not.toBe(verifyDatabaseName('acme2'));
});

test('the scripts are valid bash', () => {
  for (const argv of [
    receiveArgv('d', 'n'),
    archiveFilesArgv('s', 'd', 'n'),
    restoreFilesArgv('a', 's', 'f', 'st'),
  ])
    execFileSync('bash', ['-n', '-c', argv[2]!]);
});
