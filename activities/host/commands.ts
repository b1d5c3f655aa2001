/**
 * Pure builders of the remote commands a patch roll runs on a host (argument vectors: the patch
 * command and paths travel as separate arguments, never spliced into shell text), and parsers of
 * what they print. Unit-tested by running them through a real sh.
 */

/** Where a roll keeps its per-host state: host-private, survives a reboot (unlike /run). */
export const PATCH_STATE_DIR = '/srv/qm/patch-roll';

/** A roll id (the workflow's first run id): what names its directory on every host. */
export const ROLL_ID = /^[A-Za-z0-9][A-Za-z0-9-]{7,63}$/;

export function rollDir(rollId: string): string {
  if (!ROLL_ID.test(rollId)) throw new Error(`bad roll id ${JSON.stringify(rollId)}`);
  return `${PATCH_STATE_DIR}/${rollId}`;
}

/** Roll directories older than this are pruned by the next roll's patch step on the host. */
export const KEEP_DAYS = 60;

/**
 * The patch guard, run as `sh -c GUARD qm-patch DIR ARGV...`: once per host per roll.
 * - `flock` on DIR/lock: a retry that arrives while an earlier attempt still runs (its worker died
 *   and its SSH session with it, but the command went on) waits for that attempt to end;
 * - DIR/done (written only after the command exited 0): a retry after success runs nothing and
 *   says `already-done`;
 * - the command's stdin is /dev/null and its output goes to DIR/output.log (on the host, for ops),
 *   so a lost SSH session neither blocks it nor kills it with SIGPIPE;
 * - the last line is `QM-PATCH ran rc=N` or `QM-PATCH already-done`, after a tail of the log.
 */
const GUARD = `set -u
dir=$1; shift
mkdir -p "$dir" || exit 96
find ${PATCH_STATE_DIR} -mindepth 1 -maxdepth 1 -type d -mtime +${KEEP_DAYS} -exec rm -rf {} + 2>/dev/null
exec 9>>"$dir/lock"
flock 9 || exit 97
if [ -e "$dir/done" ]; then echo "QM-PATCH already-done"; exit 0; fi
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >>"$dir/output.log"
DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a "$@" </dev/null >>"$dir/output.log" 2>&1 9>&-
rc=$?
if [ "$rc" -eq 0 ]; then date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/done.tmp" && mv -f "$dir/done.tmp" "$dir/done" || exit 98; fi
tail -c 1500 "$dir/output.log"
echo
echo "QM-PATCH ran rc=$rc"
exit "$rc"`;

export function patchArgv(rollId: string, command: readonly string[]): string[] {
  if (!command.length || !command[0]) throw new Error('the patch command needs its program');
  return ['sh', '-c', GUARD, 'qm-patch', rollDir(rollId), ...command];
}

export type PatchOutcome =
  | { result: 'already-done' }
  | { result: 'ran'; exitCode: number; tail: string }
  | { result: 'guard-failed'; exitCode: number | null };

/** What the guard printed (stdout) and its exit code. */
export function parsePatchOutput(stdout: string, code: number | null): PatchOutcome {
  const lines = stdout.replace(/\n+$/, '').split('\n');
  const last = lines[lines.length - 1] ?? '';
  if (last === 'QM-PATCH already-done') return { result: 'already-done' };
  const m = /^QM-PATCH ran rc=(\d+)$/.exec(last);
  if (!m) return { result: 'guard-failed', exitCode: code };
  return { result: 'ran', exitCode: Number(m[1]), tail: lines.slice(0, -1).join('\n').trim() };
}

/** The kernel's id of this boot: it changes with every reboot. */
export const BOOT_ID_ARGV = ['cat', '/proc/sys/kernel/random/boot_id'];

/** The reboot marker: `requested <boot id>` before the reboot, `rebooted` once a test-bed reboot is done. */
export function rebootMarkerPath(rollId: string): string {
  return `${rollDir(rollId)}/reboot`;
}

/** Read a file, or print nothing if it is absent (exit 0 either way). */
export function readIfExistsArgv(path: string): string[] {
  return ['sh', '-c', 'if [ -e "$1" ]; then cat "$1"; fi', 'qm', path];
}

/** Write `content` to `path` atomically (its directory made first); the content comes on stdin. */
export function writeAtomicArgv(path: string): string[] {
  return ['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat >"$1.tmp" && mv -f "$1.tmp" "$1"', 'qm', path];
}

/**
 * A production reboot, scheduled 2 s ahead by systemd (so this SSH command returns cleanly before
 * sshd goes down) under a unit named after the roll: asking twice finds the unit and does not
 * schedule a second reboot.
 */
export function scheduleRebootArgv(rollId: string): string[] {
  return [
    'systemd-run',
    `--unit=qm-patch-reboot-${rollId}`,
    '--on-active=2',
    '--description=Quartermaster patch roll reboot',
    'systemctl',
    'reboot',
  ];
}
