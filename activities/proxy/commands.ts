import { NGINX_BIN, PAGES, pagePath, proxyPaths } from './layout';

/**
 * Argument vectors for everything the proxy activities run on a proxy host. Pure: they build
 * argv arrays only (SshPool.exec quotes each element); the scripts are constants that receive
 * every variable part as a positional argument, and file contents always travel on stdin.
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
 * Shell functions of the scripts below for the nginx master `$pid`: its workers (the kernel's
 * list, one read and no scan of /proc, else pgrep), and whether worker $1 has been told to shut
 * down (its title says so; it exits once the requests it holds are answered).
 */
const WORKER_FUNCTIONS = String.raw`
workers() { cat "/proc/$pid/task/$pid/children" 2>/dev/null || pgrep -P "$pid" | tr '\n' ' '; }
told() { grep -qa 'shutting down' "/proc/$1/cmdline" 2>/dev/null; }`;

/**
 * One configuration change of a proxy host as a transaction, under an flock of the proxy
 * directory (so changes of different sites never see each other's untested files):
 *
 *  0. Undo what a transaction cut short (lost connection, killed) left: put back every
 *     `*.qm-prev`, delete every file a `*.qm-new` marks as new, drop stale candidates.
 *  1. If a guard file is given, its sha256 must still be the expected one (compare-and-swap for
 *     read-modify-write callers), else exit GuardMismatch.
 *  2. If every live file already equals its candidate (and no reload is owed): nothing to do.
 *  3. Otherwise back up each live file, move each candidate into place (rename: atomic), and run
 *     `nginx -t` on the result. If it fails, or nginx reports a server name claimed twice, put
 *     every previous file back and exit with nginx's message: an invalid config is never loaded.
 *  4. Commit (drop the backups, after noting that a reload is owed), then reload the running
 *     master with SIGHUP and wait until it has started workers on the new config and (WAIT=old)
 *     told the old ones to finish what they hold: from then on no new request is routed by the
 *     old config. nginx's master tells them 100 ms after starting the new workers, so WAIT=new
 *     (return once the new workers run) is for changes that only add capacity, such as a
 *     readmitted backend: until the old workers are told, they route as before, which was
 *     already safe. With START=yes, a master that is not running is started.
 *
 * Arguments: DIR NGINX PIDFILE START(yes|no) GUARD_FILE(- for none) GUARD_SHA(or "absent")
 * WAIT(old|new), then pairs CANDIDATE LIVE; a candidate of "-" deletes the live file.
 * Prints "changed" or "unchanged", and "started" / "reloaded" when it did so.
 */
export const APPLY_SCRIPT = String.raw`
d=$1 nginx=$2 pidfile=$3 start=$4 guard=$5 want=$6 wait=$7
shift 7
errlog="$d/logs/error.log"
owed="$d/.qm-reload-owed"
ngx() { "$nginx" -p "$d/" -c "$d/nginx.conf" -e "$errlog" "$@"; }

[ -d "$d/sites" ] || { echo "the proxy is not set up on this host (no $d/sites): run ensureProxy" >&2; exit 73; }
exec 9>>"$d/.qm-lock" || exit 1
discard() {
  while [ $# -ge 2 ]; do [ "$1" = - ] || rm -f "$1"; shift 2; done
}
flock -w 60 9 || { discard "$@"; echo "another change to this proxy held its lock for 60 s" >&2; exit 70; }

for m in "$d"/nginx.conf.qm-prev "$d"/pages/*.qm-prev "$d"/sites/*.qm-prev; do
  [ -e "$m" ] && mv -f "$m" "$(printf '%s' "$m" | sed 's/[.]qm-prev$//')"
done
for m in "$d"/nginx.conf.qm-new "$d"/pages/*.qm-new "$d"/sites/*.qm-new; do
  [ -e "$m" ] && rm -f "$(printf '%s' "$m" | sed 's/[.]qm-new$//')" "$m"
done
find "$d" -maxdepth 2 -name '*.qm-cand-*' -mmin +60 -exec rm -f {} + 2>/dev/null

if [ "$guard" != - ]; then
  if [ -e "$guard" ]; then have=$(sha256sum < "$guard" | cut -d' ' -f1); else have=absent; fi
  [ "$have" = "$want" ] || { discard "$@"; echo "$guard changed since it was read" >&2; exit 71; }
fi

same() {
  while [ $# -ge 2 ]; do
    if [ "$1" = - ]; then [ ! -e "$2" ] || return 1; else cmp -s "$1" "$2" || return 1; fi
    shift 2
  done
}
install() {
  while [ $# -ge 2 ]; do
    rm -f "$2.qm-prev" "$2.qm-new"
    if [ -e "$2" ]; then cp -p "$2" "$2.qm-prev" || return 1; else : > "$2.qm-new" || return 1; fi
    if [ "$1" = - ]; then rm -f "$2" || return 1; else mv -f "$1" "$2" || return 1; fi
    shift 2
  done
}
restore() {
  while [ $# -ge 2 ]; do
    if [ -e "$2.qm-prev" ]; then mv -f "$2.qm-prev" "$2"; elif [ -e "$2.qm-new" ]; then rm -f "$2"; fi
    rm -f "$2.qm-new"
    [ "$1" = - ] || rm -f "$1"
    shift 2
  done
}
commit() {
  while [ $# -ge 2 ]; do rm -f "$2.qm-prev" "$2.qm-new"; shift 2; done
}
running() {
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q '^nginx: master process'
}
log_tail() { tail -n 5 "$errlog" >&2 2>/dev/null; }
${WORKER_FUNCTIONS}
reload() {
  old=" $(workers) "
  kill -HUP "$pid" || return 1
  # every 5 ms (a reload's steps take a few ms each); once the new workers run, the old ones are
  # told no sooner than 100 ms later (nginx's own pause), so that wait is one sleep
  i=0 paused=no
  while [ $i -lt 3000 ]; do
    fresh=no settled=yes
    for w in $(workers); do case "$old" in *" $w "*) ;; *) fresh=yes ;; esac; done
    if [ $fresh = yes ]; then
      [ "$wait" = new ] && return 0
      [ $paused = yes ] || { sleep 0.09; paused=yes; }
      for w in $old; do
        [ -e "/proc/$w" ] || continue
        told "$w" || { settled=no; break; }
      done
      [ $settled = yes ] && return 0
    fi
    sleep 0.005
    i=$((i + 1))
  done
  echo "nginx did not switch to the new configuration within 15 s; its error log ends:" >&2
  log_tail
  return 1
}
launch() {
  # 9>&-: the master must not inherit the lock, or it would hold it for as long as it runs
  ngx < /dev/null > /dev/null 2>> "$errlog" 9>&- || { echo "nginx did not start; its error log ends:" >&2; log_tail; return 1; }
  i=0
  while [ $i -lt 50 ]; do running && return 0; sleep 0.1; i=$((i + 1)); done
  echo "nginx started but wrote no pid file within 5 s; its error log ends:" >&2
  log_tail
  return 1
}

result=unchanged
if same "$@"; then
  discard "$@"
else
  install "$@" || { restore "$@"; echo "could not put the new files in place" >&2; exit 1; }
  [ -e "$d/nginx.conf" ] || { restore "$@"; echo "the proxy is not set up on this host (no $d/nginx.conf): run ensureProxy" >&2; exit 73; }
  if ! out=$(ngx -t -q 2>&1); then restore "$@"; printf '%s\n' "$out" >&2; exit 72; fi
  case "$out" in *"conflicting server name"*) restore "$@"; printf '%s\n' "$out" >&2; exit 75 ;; esac
  : > "$owed"
  commit "$@"
  result=changed
fi

if running; then
  if [ -e "$owed" ]; then reload || exit 74; rm -f "$owed"; result="$result reloaded"; fi
elif [ "$start" = yes ]; then
  if [ ! -e "$owed" ]; then
    out=$(ngx -t -q 2>&1) || { printf '%s\n' "$out" >&2; exit 72; }
  fi
  launch || exit 74
  rm -f "$owed"
  result="$result started"
fi
echo "$result"
`;

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
 * The candidates first, then APPLY_SCRIPT, in one command (one round trip instead of two): run
 * as `sh -c WRITE_THEN_APPLY qm-proxy-write N CAND1 LEN1 … CANDN LENN LIMIT PIDFILE IN_FLIGHT
 * APPLY_SCRIPT ARGS…`, the candidates' contents one after another on stdin, each read to its
 * exact length (dd, full blocks: nothing of the next one is consumed). A missing directory exits
 * ApplyExit.NotSetUp. With a LIMIT (seconds; "-" for none), once the change is applied and its
 * lock released, IN_FLIGHT_SCRIPT waits for the requests in flight (its count on the last line).
 */
const WRITE_THEN_APPLY = `set -u
n=$1; shift
umask 022
while [ "$n" -gt 0 ]; do
  c=$1 len=$2; shift 2; n=$((n - 1))
  [ -d "$(dirname -- "$c")" ] || { echo "the proxy is not set up on this host: run ensureProxy" >&2; exit 73; }
  if [ "$len" -eq 0 ]; then : > "$c" || exit 1
  else dd iflag=fullblock bs="$len" count=1 status=none > "$c" || exit 1; fi
  [ "$(wc -c < "$c")" -eq "$len" ] || { echo "$c: stdin ended early" >&2; exit 1; }
done
limit=$1 pidfile=$2 inflight=$3 script=$4; shift 4
[ "$limit" = - ] && exec sh -c "$script" "$@"
sh -c "$script" "$@" || exit
exec sh -c "$inflight" qm-proxy-in-flight "$pidfile" "$limit"`;

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
 * `graceSeconds` it is terminated. "Not running" is success.
 */
export const STOP_SCRIPT = String.raw`
pidfile=$1 grace=$2
pid=$(cat "$pidfile" 2>/dev/null) || { echo "not running"; exit 0; }
case "$pid" in '' | *[!0-9]*) echo "not running"; exit 0 ;; esac
if ! kill -0 "$pid" 2>/dev/null || [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
  ! tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q '^nginx: master process'; then
  rm -f "$pidfile"; echo "not running"; exit 0
fi
kill -QUIT "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
  [ $i -ge $((grace * 10)) ] && { kill -TERM "$pid"; sleep 1; break; }
  sleep 0.1
  i=$((i + 1))
done
rm -f "$pidfile"
echo stopped
`;

export function stopArgv(graceSeconds = 30): string[] {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new TypeError('grace is whole seconds');
  return ['sh', '-c', STOP_SCRIPT, 'qm-proxy-stop', proxyPaths.pid, String(graceSeconds)];
}

/**
 * Wait until the nginx workers told to shut down by earlier reloads have exited (each exits once
 * the requests it took before the change are finished), at most LIMIT seconds. Prints how many
 * are still running: 0 when every request in flight finished (or nginx is not running).
 */
export const IN_FLIGHT_SCRIPT = String.raw`
pidfile=$1 limit=$2
pid=$(cat "$pidfile" 2>/dev/null) || { echo 0; exit 0; }
case "$pid" in '' | *[!0-9]*) echo 0; exit 0 ;; esac
kill -0 "$pid" 2>/dev/null || { echo 0; exit 0; }
${WORKER_FUNCTIONS}
old() {
  n=0
  for w in $(workers); do told "$w" && n=$((n + 1)); done
  echo $n
}
# the clock in hundredths of a second, with no process started: /proc/uptime is "12345.67 …"
tick() { IFS='. ' read s cs _ < /proc/uptime; now=$s$cs; }
tick
end=$((now + limit * 100))
while :; do
  n=$(old)
  tick
  if [ "$n" -eq 0 ] || [ "$now" -ge "$end" ]; then echo "$n"; exit 0; fi
  sleep 0.005
done
`;

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

/** Every file ensureProxy installs (page files and the base config), for the apply transaction. */
export function baseFiles(): string[] {
  return [...PAGES.map(pagePath), proxyPaths.conf];
}
