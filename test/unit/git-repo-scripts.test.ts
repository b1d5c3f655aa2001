import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureRepoArgv, removeRepoArgv } from '../../activities/git/commands';

/**
 * The Git host's repository scripts run for real (sh and git on this machine), with the
 * repository path swapped for a scratch directory: what the provision step and its undo rely on.
 */

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-repo-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** Run a builder's argv with its repository path (position 4) replaced by `repo`. */
function run(argv: string[], repo: string): { code: number; out: string; err: string } {
  const local = [...argv];
  expect(local[4]).toMatch(/^\/srv\/git\//);
  local[4] = repo;
  const r = spawnSync(local[0]!, local.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout.trim(), err: r.stderr.trim() };
}

const git = (repo: string, ...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();

test('ensure: created once with its creator in the config, existing after; a non-repository is refused', () => {
  const repo = path.join(root, 'customers', 'acme.git');
  expect(run(ensureRepoArgv('customers/acme.git', 'acme'), repo)).toMatchObject({ code: 0, out: 'created' });
  expect(git(repo, 'config', '--get', 'qm.createdBy')).toBe('acme');
  expect(git(repo, 'rev-parse', '--is-bare-repository')).toBe('true');
  expect(run(ensureRepoArgv('customers/acme.git', 'other'), repo)).toMatchObject({
    code: 0,
    out: 'existing',
  });
  expect(git(repo, 'config', '--get', 'qm.createdBy')).toBe('acme');
  expect(fs.readdirSync(path.dirname(repo))).toEqual(['acme.git']); // no temporary left

  // an empty directory (an interrupted older init) is taken over; a directory with files is not
  const empty = path.join(root, 'empty.git');
  fs.mkdirSync(empty);
  expect(run(ensureRepoArgv('empty.git'), empty).out).toBe('created');
  const junk = path.join(root, 'junk.git');
  fs.mkdirSync(junk);
  fs.writeFileSync(path.join(junk, 'notes'), 'x');
  const refused = run(ensureRepoArgv('junk.git'), junk);
  expect(refused.code).toBe(3);
  expect(refused.err).toContain('is not a Git repository');
  expect(fs.readdirSync(junk)).toEqual(['notes']);
});

test('ensure, many at once: one creates, the others find it', async () => {
  const repo = path.join(root, 'race.git');
  const argv = [...ensureRepoArgv('race.git', 'acme')];
  argv[4] = repo;
  const { execFile } = await import('node:child_process');
  const outs = await Promise.all(
    Array.from(
      { length: 6 },
      () =>
        new Promise<string>((resolve, reject) =>
          execFile(argv[0]!, argv.slice(1), (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))),
        ),
    ),
  );
  expect(outs.filter((o) => o === 'created')).toHaveLength(1);
  expect(outs.filter((o) => o === 'existing')).toHaveLength(5);
  expect(fs.readdirSync(root)).toEqual(['race.git']);
});

test('remove: only a repository the site created and nobody pushed to; absent the second time', () => {
  const repo = path.join(root, 'acme.git');
  run(ensureRepoArgv('acme.git', 'acme'), repo);
  expect(run(removeRepoArgv('acme.git', 'other'), repo).out).toBe('not-created-by-site');
  expect(fs.existsSync(repo)).toBe(true);
  // a commit pushed to it: kept
  const tree = execFileSync('git', ['-C', repo, 'mktree'], { input: '', encoding: 'utf8' }).trim();
  const commit = execFileSync('git', ['-C', repo, 'commit-tree', tree, '-m', 'first'], {
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim();
  git(repo, 'update-ref', 'refs/heads/main', commit);
  expect(run(removeRepoArgv('acme.git', 'acme'), repo).out).toBe('has-commits');
  git(repo, 'update-ref', '-d', 'refs/heads/main');
  expect(run(removeRepoArgv('acme.git', 'acme'), repo).out).toBe('removed');
  expect(fs.existsSync(repo)).toBe(false);
  expect(run(removeRepoArgv('acme.git', 'acme'), repo).out).toBe('absent');
  // a repository made by hand (no creator recorded) is never removed
  const manual = path.join(root, 'manual.git');
  run(ensureRepoArgv('manual.git'), manual);
  expect(run(removeRepoArgv('manual.git', 'acme'), manual).out).toBe('not-created-by-site');
});
