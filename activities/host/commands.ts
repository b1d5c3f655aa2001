import { remoteScript } from '../ssh/remoteScript';

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
 * The patch guard (patch-guard.sh), run as `sh -c GUARD qm-patch DIR ARGV...`: the patch command
 * once per host per roll, under a lock, its output in DIR/output.log; the last line says
 * `QM-PATCH ran rc=N` or `QM-PATCH already-done`.
 */
const GUARD = remoteScript(__dirname, 'patch-guard.sh', {
  state_dir: PATCH_STATE_DIR,
  keep_days: KEEP_DAYS,
});

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
