import { randomUUID } from 'node:crypto';
import { archiveFilesArgv, receiveArgv, writeSmallFileArgv } from '../../activities/backup/commands';
import { writeFileArgv } from '../../activities/git/commands';
import { openBed, type Bed } from '../support/bed';

/**
 * Every folder the platform creates gets the mode its readers need, whichever step makes it
 * first: the platform's root stays 0755 (nginx's workers read /srv/qm/proxy on a proxy host that is
 * also the Git and backup host), while what holds secrets or backups stays root-only. Each script
 * runs for real on a host, into a fresh root that stands in for /srv/qm.
 */
let bed: Bed;
const HOST = 'host1';
const base = `/tmp/qm-modes-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  bed = await openBed({ temporal: false });
});
afterAll(async () => {
  await bed.fleet.pool.exec(HOST, ['rm', '-rf', '--', base]);
  await bed.close();
});

async function modes(...paths: string[]): Promise<string[]> {
  const r = await bed.fleet.pool.exec(HOST, ['stat', '-c', '%a', '--', ...paths]);
  return r.stdout.trim().split('\n');
}

test('the Git step writing a hook secret first: the root is 0755, the secret 0600', async () => {
  const root = `${base}/${randomUUID().slice(0, 8)}/qm`;
  await bed.fleet.pool.exec(HOST, writeFileArgv(`${root}/git/hook.secret`, '0600'), { stdin: 'x' });
  expect(await modes(root, `${root}/git/hook.secret`)).toEqual(['755', '600']);
});

test.each([
  ['receiving an artifact', (dir: string) => receiveArgv(dir, 'db.sql.gz')],
  ['writing its manifest', (dir: string) => writeSmallFileArgv(dir, 'manifest.json')],
])('a backup %s first: the root is 0755, every backup folder 0700', async (_what, argv) => {
  const root = `${base}/${randomUUID().slice(0, 8)}/qm`;
  await bed.fleet.pool.exec(HOST, argv(`${root}/backups/acme/b1`), { stdin: 'x' });
  expect(await modes(root, `${root}/backups`, `${root}/backups/acme`, `${root}/backups/acme/b1`)).toEqual([
    '755',
    '700',
    '700',
    '700',
  ]);
});

test('an archive of the site files made first: the root is 0755, the backup folder 0700', async () => {
  const root = `${base}/${randomUUID().slice(0, 8)}/qm`;
  await bed.fleet.pool.exec(HOST, [
    'sh',
    '-c',
    'mkdir -p "$1" && echo hi > "$1/a"',
    'qm',
    `${base}/src/files`,
  ]);
  await bed.fleet.pool.exec(
    HOST,
    archiveFilesArgv(`${base}/src/files`, `${root}/backups/acme/b1`, 'files.tar.gz'),
  );
  expect(await modes(root, `${root}/backups/acme/b1`)).toEqual(['755', '700']);
});
