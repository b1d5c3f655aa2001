import { remoteScript } from '../ssh/remoteScript';
import { NGINX_BIN, proxyPaths } from './layout';

/**
 * Argument vectors for everything the proxy activities run on a proxy host. Pure: they build
 * argv arrays only (SshPool.exec quotes each element); the scripts (the longer ones are the .sh
 * files beside this module) are constants that receive every variable part as a positional
 * argument, and file contents always travel on stdin.
 */

/** The proxy's directories (pages and logs world-readable for nginx's www-data workers). */
export function mkdirsArgv(): string[] {
  const p = proxyPaths;
  return ['mkdir', '-p', '-m', '0755', p.dir, p.sites, p.pages, p.logs, p.temp];
}

/** Exit status of READ_SCRIPT when the file does not exist. */
export const EXIT_ABSENT = 3;
const READ_SCRIPT = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi';

/** Print a file; exit EXIT_ABSENT if there is none (any other failure is a real error). */
export function readFileArgv(path: string): string[] {
  return ['sh', '-c', READ_SCRIPT, 'qm-read', path];
}

/** The name of a candidate for `live`: unique per attempt, and never matched by `sites/*.conf`. */
export function candidatePath(live: string, nonce: string): string {
  if (!/^[a-z0-9]{6,32}$/.test(nonce))
    throw new TypeError('a candidate nonce is 6-32 lowercase letters or digits');
  return `${live}.qm-cand-${nonce}`;
}

/** The marker APPLY_SCRIPT leaves between committing a change and reloading nginx with it. */
export const RELOAD_OWED = `${proxyPaths.dir}/.qm-reload-owed`;

/**
 * Files that show a change of `lives` is unfinished (cut short before its test, commit or reload):
 * the backups and new-file markers of APPLY_SCRIPT, and the owed-reload marker. If any exists, a
 * caller must go through APPLY_SCRIPT (which finishes or undoes it) even when the live files
 * already look right.
 */
export function unfinishedMarkers(lives: string[]): string[] {
  return [RELOAD_OWED, ...lives.flatMap((l) => [`${l}.qm-prev`, `${l}.qm-new`])];
}

/** Print those of the given paths that exist, one a line. */
export function existingArgv(paths: string[]): string[] {
  return ['sh', '-c', 'for f do if [ -e "$f" ]; then printf "%s\\n" "$f"; fi; done', 'qm-exists', ...paths];
}

/** Exit statuses of APPLY_SCRIPT, each a different outcome for the activity to report. */
export const ApplyExit = {
  LockTimeout: 70,
  GuardMismatch: 71,
  ConfigRejected: 72,
  NotSetUp: 73,
  ReloadFailed: 74,
  ServerNameConflict: 75,
} as const;

/**
 * One configuration change of a proxy host as a transaction (apply-change.sh says how): undo what
 * an earlier one cut short, check the guard, move the candidates into place, `nginx -t`, commit or
 * put everything back, reload (or start) nginx. Exits with an ApplyExit status when it did not.
 */
export const APPLY_SCRIPT = remoteScript(__dirname, 'apply-change.sh', {
  lock_timeout: ApplyExit.LockTimeout,
  guard_mismatch: ApplyExit.GuardMismatch,
  config_rejected: ApplyExit.ConfigRejected,
  not_set_up: ApplyExit.NotSetUp,
  reload_failed: ApplyExit.ReloadFailed,
  name_conflict: ApplyExit.ServerNameConflict,
});

export interface ApplyArgs {
  /** Start nginx if it is not running (ensureProxy); otherwise a stopped proxy is left stopped. */
  start: boolean;
  /** Compare-and-swap: apply only if this file's sha256 is still `sha256` ("absent": no file). */
  guard?: { path: string; sha256: string };
  /** Candidate -> live file; a candidate of null deletes the live file. */
  files: { candidate: string | null; live: string }[];
  /**
   * After a reload, wait only until the new workers run, not until the old ones are told to stop
   * taking requests (about 100 ms more): for a change that only adds capacity (WAIT=new above).
   */
  onlyAddsCapacity?: boolean;
}

/**
 * The candidates written from stdin, then APPLY_SCRIPT, then (with a limit) IN_FLIGHT_SCRIPT, in
 * one command: one round trip for the whole change (write-then-apply.sh).
 */
const WRITE_THEN_APPLY = remoteScript(__dirname, 'write-then-apply.sh', { not_set_up: ApplyExit.NotSetUp });

/**
 * applyArgv, with the candidates written by the same command from stdin (their byte lengths
 * given), and then, with `waitInFlightSeconds`, the wait for the requests in flight.
 */
export function writeThenApplyArgv(a: ApplyArgs, lengths: number[], waitInFlightSeconds?: number): string[] {
  const apply = applyArgv(a);
  const written = a.files.filter((f) => f.candidate !== null);
  if (written.length !== lengths.length) throw new TypeError('one length per written candidate');
  if (lengths.some((l) => !Number.isInteger(l) || l < 0)) throw new TypeError('a length is a byte count');
  if (
    waitInFlightSeconds !== undefined &&
    !(Number.isInteger(waitInFlightSeconds) && waitInFlightSeconds >= 0)
  )
    throw new TypeError('the in-flight wait is whole seconds');
  return [
    'sh',
    '-c',
    WRITE_THEN_APPLY,
    'qm-proxy-write',
    String(written.length),
    ...written.flatMap((f, i) => [f.candidate!, String(lengths[i])]),
    ...(waitInFlightSeconds === undefined
      ? ['-', '-', '-']
      : [String(waitInFlightSeconds), proxyPaths.pid, IN_FLIGHT_SCRIPT]),
    ...apply.slice(2),
  ];
}

export function applyArgv(a: ApplyArgs): string[] {
  if (a.files.length === 0) throw new TypeError('a proxy change needs at least one file');
  const pairs = a.files.flatMap((f) => [f.candidate ?? '-', f.live]);
  return [
    'sh',
    '-c',
    APPLY_SCRIPT,
    'qm-proxy-apply',
    proxyPaths.dir,
    NGINX_BIN,
    proxyPaths.pid,
    a.start ? 'yes' : 'no',
    a.guard?.path ?? '-',
    a.guard?.sha256 ?? '-',
    a.onlyAddsCapacity ? 'new' : 'old',
    ...pairs,
  ];
}

/**
 * Stop the proxy's nginx (if it runs): SIGQUIT lets workers finish their requests; after
 * `graceSeconds` it is terminated. "Not running" is success (stop-nginx.sh).
 */
export const STOP_SCRIPT = remoteScript(__dirname, 'stop-nginx.sh');

export function stopArgv(graceSeconds = 30): string[] {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new TypeError('grace is whole seconds');
  return ['sh', '-c', STOP_SCRIPT, 'qm-proxy-stop', proxyPaths.pid, String(graceSeconds)];
}

/**
 * Wait until the nginx workers told to shut down by earlier reloads have exited, at most LIMIT
 * seconds; prints how many are still running (in-flight.sh).
 */
export const IN_FLIGHT_SCRIPT = remoteScript(__dirname, 'in-flight.sh');

export function inFlightArgv(limitSeconds: number): string[] {
  if (!Number.isInteger(limitSeconds) || limitSeconds < 0) throw new TypeError('the limit is whole seconds');
  return ['sh', '-c', IN_FLIGHT_SCRIPT, 'qm-proxy-in-flight', proxyPaths.pid, String(limitSeconds)];
}

/** The master's pid and its workers' pids, one line: `<master> <worker>...` (empty if not running). */
export const STATUS_SCRIPT = String.raw`
pid=$(cat "$1" 2>/dev/null) || exit 0
kill -0 "$pid" 2>/dev/null || exit 0
echo "$pid" $(pgrep -P "$pid" | sort -n)
`;

export function statusArgv(): string[] {
  return ['sh', '-c', STATUS_SCRIPT, 'qm-proxy-status', proxyPaths.pid];
}
