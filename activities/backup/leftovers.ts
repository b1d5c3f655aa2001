import { z } from 'zod';
import { hostName } from '../../schema/common';
import { SiteId, siteNames } from '../../schema/site';
import { releaseOfDeploySnapshot, timeOfFinalBackup } from '../../protocol/ids';
import { activityIO } from '../context';
import { SNAPSHOT_ROOT } from '../db/commands';
import type { Fleet } from '../fleet';
import { hostWithRole, parseInput } from '../input';
import { ARCHIVE_ROOT } from '../storage/commands';

/**
 * The copies of a site's data kept beside its backups, and how they go:
 *
 *   DB host       /srv/qm/snapshots/<db>/deploy-<commit>-<run>.sql.gz (+ .sha256)
 *                   a deploy's snapshot, taken before it migrates; pruned with the release it
 *                   deployed (pruneDeploySnapshots, run by deployRelease after it prunes the
 *                   release folders), and all of a site's when it is deprovisioned
 *   DB host       /srv/qm/snapshots/<db>/final-<YYYYMMDDhhmmss>.sql.gz (+ .sha256)
 *   storage host  /srv/qm/archive/<siteId>/final-<YYYYMMDDhhmmss>.tar.gz
 *                   a deprovision's final backup; removed once older than the time the nightly
 *                   run gives (pruneFinalBackups, by the time in the name)
 *
 * Listing, deciding and removing are separate: the hosts list, the decision is pure (below, tested
 * without hosts), and only the exact files decided on are removed, each named relative to its root
 * and checked against the shapes above before it reaches a command line.
 */

/**
 * `ROOT SUFFIX [DIR]`: every file ROOT/<dir>/<name><SUFFIX> (only in ROOT/DIR if DIR is given), one
 * `<dir>/<name><SUFFIX>` a line; nothing if there is no such directory.
 */
export const LIST_SCRIPT = `set -eu
[ -d "$1" ] || exit 0
cd -- "$1"
if [ -n "\${3-}" ]; then
  [ -d "$3" ] || exit 0
  find "$3" -mindepth 1 -maxdepth 1 -type f -name "*$2" -printf '%p\\n'
else
  find . -mindepth 2 -maxdepth 2 -type f -name "*$2" -printf '%P\\n'
fi`;

/**
 * `ROOT FILE…`: remove each ROOT/FILE (printing `removed FILE` for those that were there), then its
 * directory if that left it empty. Safe twice: absent files are skipped.
 */
export const REMOVE_SCRIPT = `set -eu
root=$1; shift
for f in "$@"; do
  if [ -e "$root/$f" ]; then rm -f -- "$root/$f"; echo "removed $f"; fi
  rmdir -- "$root/\${f%%/*}" 2>/dev/null || true
done`;

export function listArgv(root: string, suffix: string, dir?: string): string[] {
  if (dir !== undefined && !/^[a-z0-9][a-z0-9_-]{0,99}$/.test(dir))
    throw new TypeError(`not a directory name: ${dir}`);
  return ['sh', '-c', LIST_SCRIPT, 'qm-list-kept', root, suffix, ...(dir === undefined ? [] : [dir])];
}

/** A file under a root, as LIST_SCRIPT prints it: one directory and one name, nothing else. */
const RELATIVE = /^[a-z0-9][a-z0-9_-]{0,99}\/[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function removeArgv(root: string, files: readonly string[]): string[] {
  for (const f of files)
    if (!RELATIVE.test(f) || f.includes('..'))
      throw new TypeError(`not a file to prune: ${JSON.stringify(f)}`);
  return ['sh', '-c', REMOVE_SCRIPT, 'qm-prune', root, ...files];
}

const SNAPSHOT = '.sql.gz';
const ARCHIVE = '.tar.gz';

/** A listed file split into its directory and its name without the suffix (undefined if it is not one). */
function split(line: string, suffix: string): { dir: string; name: string; file: string } | undefined {
  if (!RELATIVE.test(line) || !line.endsWith(suffix)) return undefined;
  const [dir, base] = line.split('/') as [string, string];
  return { dir, name: base.slice(0, -suffix.length), file: line };
}

/**
 * Which deploy snapshots of a database go: those whose release is not among `keepReleases` (the
 * release folders still kept on the site's app hosts). Snapshots of any other name are kept.
 */
export function deploySnapshotsToPrune(
  listed: readonly string[],
  db: string,
  keepReleases: readonly string[],
) {
  const prune: string[] = [];
  for (const line of listed) {
    const s = split(line, SNAPSHOT);
    if (!s || s.dir !== db) continue;
    const release = releaseOfDeploySnapshot(s.name);
    if (release && !keepReleases.some((r) => r.startsWith(release))) prune.push(s.name);
  }
  return prune.sort();
}

/** Which final backups (`final-<time>` in any directory) are older than `before`. */
export function finalBackupsToPrune(listed: readonly string[], suffix: string, before: Date) {
  const prune: { dir: string; name: string; file: string }[] = [];
  for (const line of listed) {
    const s = split(line, suffix);
    const at = s && timeOfFinalBackup(s.name);
    if (s && at && at.getTime() < before.getTime()) prune.push(s);
  }
  return prune.sort((a, b) => (a.file < b.file ? -1 : 1));
}

/** The snapshot's file and its checksum, relative to SNAPSHOT_ROOT. */
const snapshotFiles = (dir: string, name: string) => [
  `${dir}/${name}${SNAPSHOT}`,
  `${dir}/${name}${SNAPSHOT}.sha256`,
];

const PruneDeploySnapshotsInput = z.strictObject({
  siteId: SiteId,
  dbHost: hostName,
  /** Releases still kept (full commits or their first 12 hex digits); empty: every deploy snapshot goes. */
  keepReleases: z.array(z.string().regex(/^[0-9a-f]{12,40}$/, 'a release is a commit (hex)')).max(100),
});
const PruneFinalBackupsInput = z.strictObject({
  host: hostName,
  /** Final backups taken before this time go. */
  before: z.iso.datetime(),
});

const QUICK_MS = 60_000;

export function makeLeftoverActivities(fleet: Fleet) {
  const pool = fleet.pool;
  const run = (host: string, argv: string[]) =>
    pool.exec(host, argv, { ...activityIO(), timeoutMs: 5 * QUICK_MS });
  const removed = (stdout: string) =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('removed '))
      .map((l) => l.slice('removed '.length));

  return {
    /**
     * Remove the site's deploy snapshots whose release is no longer kept (see
     * deploySnapshotsToPrune); deprovision passes no releases, and every deploy snapshot goes (the
     * final one stays). Returns the snapshot names removed and kept. Safe twice: what is gone is
     * not listed again.
     */
    async pruneDeploySnapshots(
      input: z.input<typeof PruneDeploySnapshotsInput>,
    ): Promise<{ removed: string[]; kept: string[] }> {
      const i = parseInput(PruneDeploySnapshotsInput, input, 'pruneDeploySnapshots');
      hostWithRole(fleet, i.dbHost, 'db');
      const db = siteNames(i.siteId).database;
      const listed = (await run(i.dbHost, listArgv(SNAPSHOT_ROOT, SNAPSHOT, db))).stdout
        .split('\n')
        .filter(Boolean);
      const prune = deploySnapshotsToPrune(listed, db, i.keepReleases);
      if (prune.length)
        await run(
          i.dbHost,
          removeArgv(
            SNAPSHOT_ROOT,
            prune.flatMap((name) => snapshotFiles(db, name)),
          ),
        );
      const kept = listed
        .filter((l) => l.startsWith(`${db}/`))
        .map((l) => l.slice(db.length + 1, -SNAPSHOT.length))
        .filter((name) => !prune.includes(name))
        .sort();
      return { removed: prune, kept };
    },

    /**
     * Remove the deprovisions' final backups taken before `before` from a host: the database
     * snapshots if it is a DB host, the files archives if it is a storage host (both, if both).
     * Returns the paths removed. Safe twice: what is gone is not listed again.
     */
    async pruneFinalBackups(input: z.input<typeof PruneFinalBackupsInput>): Promise<{ removed: string[] }> {
      const i = parseInput(PruneFinalBackupsInput, input, 'pruneFinalBackups');
      const roles = pool.host(i.host).roles;
      const before = new Date(i.before);
      const out: string[] = [];
      const kinds: [string, string, (f: { dir: string; name: string; file: string }) => string[]][] = [];
      if (roles.includes('db')) kinds.push([SNAPSHOT_ROOT, SNAPSHOT, (f) => snapshotFiles(f.dir, f.name)]);
      if (roles.includes('storage')) kinds.push([ARCHIVE_ROOT, ARCHIVE, (f) => [f.file]]);
      for (const [root, suffix, files] of kinds) {
        const listed = (await run(i.host, listArgv(root, suffix))).stdout.split('\n').filter(Boolean);
        const prune = finalBackupsToPrune(listed, suffix, before);
        if (!prune.length) continue;
        const r = await run(i.host, removeArgv(root, prune.flatMap(files)));
        out.push(...removed(r.stdout).map((f) => `${root}/${f}`));
      }
      return { removed: out };
    },
  };
}
