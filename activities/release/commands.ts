import { RELEASES_ROOT } from '../../schema/release';

/**
 * The release folders on an app host (/srv/qm/releases/<site>/<commit>): built here as argument
 * vectors with constant scripts and positional arguments, run by the release activities.
 *
 * A folder exists only once it is complete: the tree is unpacked into a temporary folder, then
 * renamed into place. Its mtime is when it last went live (touched on activation), which is the
 * order the pruning keeps.
 */

export const releasesDir = (siteId: string) => `${RELEASES_ROOT}/${siteId}`;

/** Exit status: the release folder is already there (nothing to fetch). */
export const RELEASE_PRESENT = 10;

const HAS_RELEASE_SCRIPT = `set -eu
if [ -d "$1/$2" ]; then exit ${RELEASE_PRESENT}; fi
exit 0`;

export function hasReleaseArgv(siteId: string, commit: string): string[] {
  return ['sh', '-c', HAS_RELEASE_SCRIPT, 'qm-has-release', releasesDir(siteId), commit];
}

const UNPACK_SCRIPT = `set -eu
dir=$1 commit=$2
if [ -d "$dir/$commit" ]; then cat >/dev/null; echo existing; exit 0; fi
umask 022
mkdir -p -- "$dir"
tmp="$dir/.tmp-$commit.$$"
trap 'rm -rf -- "$tmp"' EXIT
mkdir -- "$tmp"
tar -x -f - -C "$tmp" --no-same-owner
mv -T -- "$tmp" "$dir/$commit"
trap - EXIT
echo created`;

/** Unpack a tar (stdin) into the release folder, atomically; prints `created` or `existing`. */
export function unpackReleaseArgv(siteId: string, commit: string): string[] {
  return ['sh', '-c', UNPACK_SCRIPT, 'qm-unpack-release', releasesDir(siteId), commit];
}

const LIST_SCRIPT = `set -eu
[ -d "$1" ] || exit 0
cd -- "$1"
for d in */; do
  [ -d "$d" ] || continue
  printf '%s %s\\n' "$(stat -c %Y -- "$d")" "\${d%/}"
done`;

/** `<mtime> <commit>` per complete release folder (temporary ones start with a dot and are skipped). */
export function listReleasesArgv(siteId: string): string[] {
  return ['sh', '-c', LIST_SCRIPT, 'qm-list-releases', releasesDir(siteId)];
}

/** The output of listReleasesArgv: commit ids with the time (unix seconds) each last went live. */
export function parseReleaseList(stdout: string): { commit: string; liveAt: number }[] {
  return stdout
    .split('\n')
    .map((l) => /^(\d+) ([0-9a-f]{40})$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ commit: m[2]!, liveAt: Number(m[1]) }));
}

/** Mark the release as the one that went live now (its folder's mtime). */
export function touchReleaseArgv(siteId: string, commit: string): string[] {
  return ['touch', '-c', '--', `${releasesDir(siteId)}/${commit}`];
}

const REMOVE_SCRIPT = `set -eu
dir=$1; shift
for c in "$@"; do
  if [ -e "$dir/$c" ]; then rm -rf -- "$dir/$c"; echo "removed $c"; fi
done
# unpacks cut short by a crash (older than an hour: never one under way)
find "$dir" -mindepth 1 -maxdepth 1 -name '.tmp-*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true`;

/** Remove the named release folders (and stale temporary ones). */
export function removeReleasesArgv(siteId: string, commits: string[]): string[] {
  return ['sh', '-c', REMOVE_SCRIPT, 'qm-remove-releases', releasesDir(siteId), ...commits];
}

const REMOVE_ALL_SCRIPT = `set -eu
[ -e "$1" ] || { echo absent; exit 0; }
rm -rf -- "$1"
echo removed`;

/** Remove every release folder of the site on the host (deprovision). */
export function removeAllReleasesArgv(siteId: string): string[] {
  return ['sh', '-c', REMOVE_ALL_SCRIPT, 'qm-remove-all-releases', releasesDir(siteId)];
}

/**
 * Which kept releases to delete: all but the `keep` most recently live ones; `protect` (the live
 * release and the one before it) are never deleted. Pure.
 */
export function releasesToPrune(
  kept: { commit: string; liveAt: number }[],
  keep: number,
  protect: string[],
): string[] {
  const newestFirst = [...kept].sort((a, b) => b.liveAt - a.liveAt || (a.commit < b.commit ? -1 : 1));
  return newestFirst
    .slice(keep)
    .map((r) => r.commit)
    .filter((c) => !protect.includes(c));
}
