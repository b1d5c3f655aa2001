import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  archivePath,
  AUTHORIZE_SCRIPT,
  authorizeArgv,
  authorizedKeyLine,
  ensureFilesArgv,
  keyscanArgv,
  knownHostsArgv,
  knownHostsName,
  mountArgv,
  parseKeyscan,
  parseRemoveFiles,
  pinnedKnownHosts,
  REMOVE_FILES_SCRIPT,
  removeFilesArgv,
  sshfsArgv,
  STORAGE_KEY_SCRIPT,
  storageKeyArgv,
  storagePaths,
  unmountArgv,
} from '../../activities/storage/commands';
import { runLocal as run } from '../support/runLocal';

let tmp: string;
beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-storage-'))));
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

/** A real ed25519 public key line, made by ssh-keygen. */
function newKey(dir: string, name = 'k'): { pub: string; file: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'c', '-f', file]);
  return { pub: fs.readFileSync(`${file}.pub`, 'utf8'), file };
}

describe('paths and argv', () => {
  test('where a site lives', () => {
    expect(storagePaths('acme')).toEqual({
      files: '/srv/qm/files/acme',
      archiveDir: '/srv/qm/archive/acme',
      siteDir: '/srv/qm/sites/acme',
      mount: '/srv/qm/sites/acme/files',
      log: '/run/qm/sshfs/acme.log',
    });
    expect(archivePath('acme', 'final-1')).toBe('/srv/qm/archive/acme/final-1.tar.gz');
    expect(ensureFilesArgv('acme').at(-1)).toBe('/srv/qm/files/acme');
    expect(removeFilesArgv('acme').slice(-3)).toEqual(['/srv/qm/files/acme', '', '']);
    expect(removeFilesArgv('acme', 'a1', true).slice(-2)).toEqual(['/srv/qm/archive/acme/a1.tar.gz', 'keep']);
    expect(unmountArgv('acme').slice(-3)).toEqual([
      '/srv/qm/sites/acme/files',
      '/srv/qm/sites/acme',
      '/run/qm/sshfs/acme.log',
    ]);
  });

  test('sshfs: pinned known_hosts only, our key only, no prompts, the options the platform relies on', () => {
    const argv = sshfsArgv({
      user: 'root',
      address: '10.0.0.1',
      port: 2222,
      remotePath: '/srv/qm/files/acme',
      mountPoint: '/srv/qm/sites/acme/files',
    });
    expect(argv.slice(0, 5)).toEqual(['sshfs', '-F', '/dev/null', '-p', '2222']);
    expect(argv[5]).toBe('-o');
    expect(argv[6]!.split(',')).toEqual([
      'IdentityFile=/root/.ssh/qm_storage_ed25519',
      'IdentitiesOnly=yes',
      'UserKnownHostsFile=/root/.ssh/qm_known_hosts',
      'GlobalKnownHostsFile=/dev/null',
      'StrictHostKeyChecking=yes',
      'BatchMode=yes',
      'ConnectTimeout=10',
      'allow_other',
      'reconnect',
      'ServerAliveInterval=5',
      'ServerAliveCountMax=3',
      'idmap=none',
    ]);
    expect(argv.slice(7)).toEqual(['root@10.0.0.1:/srv/qm/files/acme', '/srv/qm/sites/acme/files']);
    expect(
      sshfsArgv({ user: 'root', address: 'fd00::1', port: 22, remotePath: '/x', mountPoint: '/y' })[7],
    ).toBe('root@[fd00::1]:/x');
    const mount = mountArgv('acme', 'root@10.0.0.1:/srv/qm/files/acme', argv);
    expect(mount.slice(3, 8)).toEqual([
      'qm-mount',
      '/srv/qm/sites/acme/files',
      'root@10.0.0.1:/srv/qm/files/acme',
      '/run/qm/sshfs/acme.log',
      '',
    ]);
    expect(mount.slice(8)).toEqual(argv);
    expect(mountArgv('acme', 'root@10.0.0.1:/srv/qm/files/acme', argv, { setAside: true })[7]).toBe(
      '/srv/qm/set-aside/acme',
    );
  });

  test('keyscan and known_hosts names', () => {
    expect(keyscanArgv('10.0.0.1', 22)).toEqual(['ssh-keyscan', '-T', '10', '-p', '22', '--', '10.0.0.1']);
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });
});

describe('authorizing an app host on the storage host', () => {
  test('the line: restrict, SFTP only, the app host named; anything but one ed25519 key is refused', () => {
    const { pub } = newKey(tmp);
    const blob = pub.split(' ')[1]!;
    expect(authorizedKeyLine(pub, 'host2')).toEqual({
      blob,
      line: `restrict,command="internal-sftp" ssh-ed25519 ${blob} qm-storage@host2`,
    });
    expect(() => authorizedKeyLine(`command="sh" ${pub}`, 'host2')).toThrow(TypeError);
    expect(() => authorizedKeyLine(`${pub}\n${pub}`, 'host2')).toThrow(TypeError);
    expect(() => authorizedKeyLine(pub.replace('ssh-ed25519', 'ssh-rsa'), 'host2')).toThrow(TypeError);
    expect(() => authorizedKeyLine(pub, 'host2 evil')).toThrow(TypeError);
  });

  test('the script adds once, replaces an older line of the same key, keeps every other line', async () => {
    const file = path.join(tmp, 'ssh', 'authorized_keys');
    const a = authorizedKeyLine(newKey(tmp, 'a').pub, 'host2');
    const b = authorizedKeyLine(newKey(tmp, 'b').pub, 'host3');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, `ssh-ed25519 OTHERKEY ops@laptop\nno-pty ssh-ed25519 ${a.blob} old-line`); // no final newline
    expect((await run(authorizeArgv(a, file)))[1].trim()).toBe('added');
    expect((await run(authorizeArgv(a, file)))[1].trim()).toBe('unchanged');
    expect((await run(authorizeArgv(b, file)))[1].trim()).toBe('added');
    expect(fs.readFileSync(file, 'utf8')).toBe(`ssh-ed25519 OTHERKEY ops@laptop\n${a.line}\n${b.line}\n`);
    expect(mode(file)).toBe('600');
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['authorized_keys', 'authorized_keys.qm-lock']);
    expect(AUTHORIZE_SCRIPT).toContain('flock');
  });
});

describe('the app host storage key', () => {
  test('made once (0600), the public key printed; a lost .pub is derived again, never a new key', async () => {
    const key = path.join(tmp, 'ssh', 'qm_storage_ed25519');
    const argv = storageKeyArgv('host2', key);
    const [code, out] = await run(argv);
    expect(code).toBe(0);
    const [state, pub] = out.trim().split('\n');
    expect(state).toBe('created');
    expect(pub).toMatch(/^ssh-ed25519 \S+ qm-storage@host2$/);
    expect(mode(key)).toBe('600');
    expect(mode(path.dirname(key))).toBe('700');
    const [, again] = await run(argv);
    expect(again.trim().split('\n')).toEqual(['existing', pub]);
    fs.rmSync(`${key}.pub`);
    const [, derived] = await run(argv);
    expect(derived.trim().split('\n')[0]).toBe('existing');
    expect(derived.trim().split('\n')[1]!.split(' ').slice(0, 2)).toEqual(pub!.split(' ').slice(0, 2));
    expect(STORAGE_KEY_SCRIPT).toContain('flock');
  });
});

describe('pinning the storage host key', () => {
  test('fingerprints of scanned keys match ssh-keygen; only pinned keys are kept', () => {
    const a = newKey(tmp, 'a');
    const b = newKey(tmp, 'b');
    const fp = (f: string) =>
      execFileSync('ssh-keygen', ['-lf', `${f}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    const scan = `# 10.0.0.1:22 SSH-2.0-OpenSSH_9.2\n10.0.0.1 ${a.pub.split(' ').slice(0, 2).join(' ')}\n10.0.0.1 ${b.pub.split(' ').slice(0, 2).join(' ')}\ngarbage\n`;
    const keys = parseKeyscan(scan);
    expect(keys.map((k) => k.fingerprint)).toEqual([fp(a.file), fp(b.file)]);
    expect(pinnedKnownHosts('10.0.0.1', keys, [fp(b.file)])).toEqual([
      `10.0.0.1 ${b.pub.split(' ').slice(0, 2).join(' ')}`,
    ]);
    expect(pinnedKnownHosts('10.0.0.1', keys, ['SHA256:somethingelse'])).toEqual([]);
  });

  test('the known_hosts script replaces one host’s lines, keeps the others’, reports unchanged', async () => {
    const file = path.join(tmp, 'ssh', 'qm_known_hosts');
    const one = ['10.0.0.1 ssh-ed25519 AAAA1'];
    expect((await run(knownHostsArgv('10.0.0.1', file), one.join('\n')))[1].trim()).toBe('changed');
    expect(
      (await run(knownHostsArgv('[10.0.0.2]:2222', file), '[10.0.0.2]:2222 ssh-ed25519 BBBB'))[1].trim(),
    ).toBe('changed');
    expect((await run(knownHostsArgv('10.0.0.1', file), one.join('\n')))[1].trim()).toBe('unchanged');
    const rekeyed = '10.0.0.1 ssh-ed25519 CCCC\n10.0.0.1 ssh-rsa DDDD';
    expect((await run(knownHostsArgv('10.0.0.1', file), rekeyed))[1].trim()).toBe('changed');
    expect(fs.readFileSync(file, 'utf8')).toBe(`[10.0.0.2]:2222 ssh-ed25519 BBBB\n${rekeyed}\n`);
    expect(mode(file)).toBe('600');
  });
});

describe('archiving and removing files (the script, run here on a temporary tree)', () => {
  const script = (dir: string, archive = '', keep = '') => [
    'bash',
    '-c',
    REMOVE_FILES_SCRIPT,
    'qm',
    dir,
    archive,
    keep,
  ];

  test('archive then remove; a retry keeps the archive it made; an archive is root-only', async () => {
    const dir = path.join(tmp, 'files', 'acme');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'sub', 'a.txt'), 'hello');
    const archive = path.join(tmp, 'archive', 'acme', 'final.tar.gz');
    const [code, out, err] = await run(script(dir, archive));
    expect([code, err]).toEqual([0, '']);
    const first = parseRemoveFiles(out);
    expect(first.files).toBe('removed');
    expect(first.archive?.action).toBe('created');
    expect(first.archive?.bytes).toBe(fs.statSync(archive).size);
    expect(first.archive?.sha256).toBe(
      execFileSync('sha256sum', [archive], { encoding: 'utf8' }).split(' ')[0],
    );
    expect(mode(path.dirname(archive))).toBe('700');
    expect(mode(archive)).toBe('600');
    expect(fs.existsSync(dir)).toBe(false);
    expect(execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n').sort()).toContain(
      'acme/sub/a.txt',
    );
    expect(fs.readdirSync(path.dirname(archive))).toEqual(['final.tar.gz']);
    // a retry: same archive, files absent
    const second = parseRemoveFiles((await run(script(dir, archive)))[1]);
    expect(second).toEqual({ archive: { ...first.archive, action: 'existing' }, files: 'absent' });
  });

  test('keep: archive only; no archive asked: remove only; nothing there: absent', async () => {
    const dir = path.join(tmp, 'files', 'acme');
    fs.mkdirSync(dir, { recursive: true });
    const archive = path.join(tmp, 'archive', 'acme', 'x.tar.gz');
    expect(parseRemoveFiles((await run(script(dir, archive, 'keep')))[1]).files).toBe('kept');
    expect(fs.existsSync(dir) && fs.existsSync(archive)).toBe(true);
    expect(parseRemoveFiles((await run(script(dir)))[1])).toEqual({ archive: undefined, files: 'removed' });
    expect(parseRemoveFiles((await run(script(dir)))[1])).toEqual({ archive: undefined, files: 'absent' });
    expect(parseRemoveFiles((await run(script(dir, path.join(tmp, 'none.tar.gz'))))[1])).toEqual({
      archive: undefined,
      files: 'absent',
    });
  });
});
