import { siteNames } from '../../schema/site';
import { fingerprint } from '../ssh/pool';

/**
 * The site files: one directory per site on the storage host, mounted with sshfs on every app host
 * of the site. Everything the storage activities run, built and never run here (Kamal-style):
 * argument vectors whose scripts are constants taking each variable part as a positional argument
 * (so no name, path or key ever becomes shell syntax), and the pure text they write.
 */

export const FILES_ROOT = '/srv/qm/files';
export const ARCHIVE_ROOT = '/srv/qm/archive';
export const SITES_ROOT = '/srv/qm/sites';
/** Logs of the sshfs processes (their ssh's stderr), on the app hosts. */
export const SSHFS_LOG_DIR = '/run/qm/sshfs';

/** The app host's own key for the storage hosts: made on the app host, never leaves it. */
export const STORAGE_KEY = '/root/.ssh/qm_storage_ed25519';
/** Storage host keys pinned on the app host (checked against the inventory before being written). */
export const KNOWN_HOSTS = '/root/.ssh/qm_known_hosts';
/** Where the storage host authorizes the app hosts' keys. */
export const AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

export function storagePaths(siteId: string) {
  const names = siteNames(siteId);
  return {
    /** On the storage host (FILES_ROOT/<id>). */
    files: names.filesDir,
    archiveDir: `${ARCHIVE_ROOT}/${siteId}`,
    /** On the app hosts: the mount point (SITES_ROOT/<id>/files) and the directory holding it. */
    siteDir: `${SITES_ROOT}/${siteId}`,
    mount: names.mountDir,
    log: `${SSHFS_LOG_DIR}/${siteId}.log`,
  };
}

export function archivePath(siteId: string, archiveName: string): string {
  return `${storagePaths(siteId).archiveDir}/${archiveName}.tar.gz`;
}

/** Exit statuses the scripts use for outcomes a retry cannot change. */
export const StorageExit = {
  /** The mount point holds another mount. */
  OtherMount: 75,
  /** The mount point (unmounted) holds files: written locally, they would be hidden by the mount. */
  NotEmpty: 76,
} as const;

// ------------------------------------------------------------------ on the storage host

const ENSURE_FILES_SCRIPT = `set -eu
umask 022
if [ -d "$1" ]; then echo existing; else mkdir -p -- "$1"; echo created; fi`;

/** Create the site's files directory if absent; prints `created` or `existing`. */
export function ensureFilesArgv(siteId: string): string[] {
  return ['sh', '-c', ENSURE_FILES_SCRIPT, 'qm-ensure-files', storagePaths(siteId).files];
}

/**
 * Archive (if an archive path is given) and remove a site's files directory. The archive is made
 * only if there is none of that name yet: written to a temporary file, flushed, then linked into
 * place (create-if-absent), so a retry after it was made (and the files perhaps half removed)
 * keeps the whole archive instead of overwriting it with what is left. Archives are root-only.
 * Prints `archive created|existing|none`, then `sha <hex> <bytes>` if there is an archive, then
 * `files removed|kept|absent` (kept: only archived, when asked to keep them).
 */
export const REMOVE_FILES_SCRIPT = `set -euo pipefail
dir=$1 archive=\${2-} keep=\${3-}
if [ -n "$archive" ]; then
  if [ -e "$archive" ]; then
    echo "archive existing"
  elif [ -d "$dir" ]; then
    adir=$(dirname -- "$archive")
    (umask 022; mkdir -p -- "$(dirname -- "$adir")")
    mkdir -p -m 0700 -- "$adir"
    tmp="$archive.tmp.$$"
    trap 'rm -f -- "$tmp"' EXIT
    # exit 1 is "a file changed as we read it" (a live site): the archive is still whole
    (umask 077; tar -C "$(dirname -- "$dir")" --numeric-owner --warning=no-file-changed \
      -czf "$tmp" -- "$(basename -- "$dir")") || [ $? = 1 ]
    sync -- "$tmp"
    ln -- "$tmp" "$archive"
    sync -- "$adir"
    echo "archive created"
  else
    echo "archive none"
  fi
  if [ -e "$archive" ]; then
    sum=$(sha256sum <"$archive")
    echo "sha \${sum%% *} $(stat -c %s -- "$archive")"
  fi
fi
if [ -n "$keep" ]; then [ -d "$dir" ] && echo "files kept" || echo "files absent"
elif [ -d "$dir" ]; then rm -rf -- "$dir"; echo "files removed"
else echo "files absent"; fi`;

export function removeFilesArgv(siteId: string, archiveName?: string, keepFiles = false): string[] {
  return [
    'bash',
    '-c',
    REMOVE_FILES_SCRIPT,
    'qm-remove-files',
    storagePaths(siteId).files,
    archiveName === undefined ? '' : archivePath(siteId, archiveName),
    keepFiles ? 'keep' : '',
  ];
}

export interface RemoveFilesOutcome {
  archive?: { action: 'created' | 'existing'; sha256: string; bytes: number };
  files: 'removed' | 'kept' | 'absent';
}

export function parseRemoveFiles(stdout: string): RemoveFilesOutcome {
  const archived = /^archive (created|existing)$/m.exec(stdout);
  const sha = /^sha ([0-9a-f]{64}) (\d+)$/m.exec(stdout);
  const files = /^files (removed|kept|absent)$/m.exec(stdout);
  if (!files || (archived && !sha)) throw new Error('the remove script printed no complete result');
  return {
    archive:
      archived && sha
        ? { action: archived[1] as 'created' | 'existing', sha256: sha[1]!, bytes: Number(sha[2]) }
        : undefined,
    files: files[1] as RemoveFilesOutcome['files'],
  };
}

/**
 * Put `line` in the authorized keys file, replacing any other line for the same key (so a key
 * authorized earlier with other options ends up with ours), under a lock; every other line is
 * kept as it was. The new file is written beside the old one and renamed over it. Prints
 * `unchanged` or `added`.
 */
export const AUTHORIZE_SCRIPT = `set -eu
file=$1 blob=$2 line=$3
umask 077
mkdir -p -- "$(dirname -- "$file")"
exec 9>"$file.qm-lock"
flock -w 30 9
touch -- "$file"
if grep -qxF -- "$line" "$file"; then echo unchanged; exit 0; fi
tmp="$file.qm-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
{ grep -vF -- " $blob" "$file" || [ $? = 1 ]; } >"$tmp"
printf '%s\\n' "$line" >>"$tmp"
chmod 0600 -- "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$file"
echo added`;

export function authorizeArgv(line: AuthorizedKey, file = AUTHORIZED_KEYS): string[] {
  return ['bash', '-c', AUTHORIZE_SCRIPT, 'qm-authorize', file, line.blob, line.line];
}

export interface AuthorizedKey {
  blob: string;
  line: string;
}

const PUBLIC_KEY = /^(ssh-ed25519) ([A-Za-z0-9+/]+={0,2})(?: .*)?$/;

/**
 * The authorized_keys line of an app host's storage key. `restrict` takes away forwarding, ptys
 * and the rest; the forced `internal-sftp` means the key can do nothing but SFTP (what sshfs
 * speaks), whatever command a client asks for: an app host that is broken into gets files, not a
 * root shell on the storage host. The comment names the app host. The public key comes from the
 * app host, so it is checked to be exactly one ed25519 key before it is used.
 */
export function authorizedKeyLine(publicKey: string, appHost: string): AuthorizedKey {
  const m = PUBLIC_KEY.exec(publicKey.trim());
  if (!m || publicKey.trim().includes('\n')) throw new TypeError('not an ssh-ed25519 public key line');
  if (!/^[a-z0-9-]+$/.test(appHost)) throw new TypeError('a host name is lowercase letters, digits and -');
  return { blob: m[2]!, line: `restrict,command="internal-sftp" ${m[1]} ${m[2]} qm-storage@${appHost}` };
}

// ------------------------------------------------------------------ on the app host

/**
 * The app host's storage key: generated (ed25519, no passphrase, 0600) if absent, under a lock so
 * two mounts at once make one key; a missing .pub is derived from the private key, which is never
 * replaced once it exists. Prints `created` or `existing`, then the public key line.
 */
export const STORAGE_KEY_SCRIPT = `set -eu
key=$1 comment=$2
umask 077
mkdir -p -- "$(dirname -- "$key")"
exec 9>"$key.qm-lock"
flock -w 30 9
state=existing
if [ ! -s "$key" ]; then
  rm -f -- "$key" "$key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$comment" -f "$key" </dev/null >/dev/null
  state=created
elif [ ! -s "$key.pub" ]; then
  ssh-keygen -y -f "$key" >"$key.pub.qm-tmp"
  mv -f -- "$key.pub.qm-tmp" "$key.pub"
fi
echo "$state"
cat -- "$key.pub"`;

export function storageKeyArgv(appHost: string, key = STORAGE_KEY): string[] {
  return ['bash', '-c', STORAGE_KEY_SCRIPT, 'qm-storage-key', key, `qm-storage@${appHost}`];
}

/** The storage host's keys as the app host sees them (all types; checked against the pins after). */
export function keyscanArgv(address: string, port: number): string[] {
  return ['ssh-keyscan', '-T', '10', '-p', String(port), '--', address];
}

/** known_hosts' name for a host: the bare address on port 22, else `[address]:port`. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

export interface ScannedKey {
  type: string;
  blob: string;
  fingerprint: string;
}

/** The keys in `ssh-keyscan` output, each with its OpenSSH SHA256 fingerprint. */
export function parseKeyscan(stdout: string): ScannedKey[] {
  const keys: ScannedKey[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [, type, blob] = line.trim().split(/\s+/);
    if (!type || !blob || !/^[a-z0-9@.-]+$/.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) continue;
    keys.push({ type, blob, fingerprint: fingerprint(Buffer.from(blob, 'base64')) });
  }
  return keys;
}

/** The scanned keys whose fingerprints are pinned in the inventory, as known_hosts lines (sorted). */
export function pinnedKnownHosts(
  name: string,
  scanned: readonly ScannedKey[],
  pins: readonly string[],
): string[] {
  return [
    ...new Set(scanned.filter((k) => pins.includes(k.fingerprint)).map((k) => `${name} ${k.type} ${k.blob}`)),
  ].sort();
}

/**
 * Make the known_hosts lines of one host exactly the ones on stdin (other hosts' lines are kept),
 * under a lock, by writing a new file and renaming it over the old. Prints `unchanged` or `changed`.
 */
export const KNOWN_HOSTS_SCRIPT = `set -eu
file=$1
export QM_NAME=$2
umask 077
mkdir -p -- "$(dirname -- "$file")"
exec 9>"$file.qm-lock"
flock -w 30 9
touch -- "$file"
new=$(cat)
cur=$(awk '$1 == ENVIRON["QM_NAME"]' "$file")
if [ "$cur" = "$new" ]; then echo unchanged; exit 0; fi
tmp="$file.qm-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
{ awk '$1 != ENVIRON["QM_NAME"]' "$file"; printf '%s\\n' "$new"; } >"$tmp"
chmod 0600 -- "$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$file"
echo changed`;

export function knownHostsArgv(name: string, file = KNOWN_HOSTS): string[] {
  return ['bash', '-c', KNOWN_HOSTS_SCRIPT, 'qm-known-hosts', file, name];
}

/** The sshfs command line: the pinned key, our own key only, no prompts, no ssh_config surprises. */
export function sshfsArgv(o: {
  user: string;
  address: string;
  port: number;
  remotePath: string;
  mountPoint: string;
  key?: string;
  knownHosts?: string;
}): string[] {
  const host = o.address.includes(':') ? `[${o.address}]` : o.address;
  const options = [
    `IdentityFile=${o.key ?? STORAGE_KEY}`,
    'IdentitiesOnly=yes',
    `UserKnownHostsFile=${o.knownHosts ?? KNOWN_HOSTS}`,
    'GlobalKnownHostsFile=/dev/null',
    'StrictHostKeyChecking=yes',
    'BatchMode=yes',
    'ConnectTimeout=10',
    'allow_other',
    'reconnect',
    'ServerAliveInterval=5',
    'ServerAliveCountMax=3',
    'idmap=none',
  ];
  for (const opt of options)
    if (opt.includes(',')) throw new TypeError('an sshfs option cannot contain a comma');
  return [
    'sshfs',
    '-F',
    '/dev/null',
    '-p',
    String(o.port),
    '-o',
    options.join(','),
    `${o.user}@${host}:${o.remotePath}`,
    o.mountPoint,
  ];
}

/**
 * The mount on the app host. "Mounted" is `mountpoint -q` (which stats the path, so it is also
 * "alive"); the mount table says from where. Outcomes:
 * - mounted alive from `source`: `unchanged`;
 * - mounted from something else: exit OtherMount (never replaced silently);
 * - in the mount table but not answering (its sshfs died): detached lazily, mounted again
 *   (`remounted`);
 * - not mounted: the directory must be empty (files written there would be hidden by the mount
 *   and lost to the other app hosts: exit NotEmpty), then sshfs, in a session of its own (it
 *   outlives this command) with its output in the log file, and `mounted`.
 */
export const MOUNT_SCRIPT = `set -eu
mp=$1 source=$2 log=$3
shift 3
fm=$(command -v fusermount3 || command -v fusermount || echo fusermount)
cur=$(QM_MP="$mp" awk '$5 == ENVIRON["QM_MP"] { for (i = 7; i < NF; i++) if ($i == "-") { c = $(i + 1) " " $(i + 2); break } } END { print c }' /proc/self/mountinfo)
action=mounted
if mountpoint -q -- "$mp"; then
  if [ "$cur" = "fuse.sshfs $source" ]; then echo unchanged; exit 0; fi
  echo "$mp is a mount of \${cur:-something else}, not of $source: unmount it first" >&2
  exit ${StorageExit.OtherMount}
elif [ -n "$cur" ]; then
  "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"
  action=remounted
fi
mkdir -p -- "$mp"
if [ -n "$(ls -A -- "$mp")" ]; then
  echo "$mp holds files while not mounted (written on this host only?): move them to the storage host, then mount" >&2
  exit ${StorageExit.NotEmpty}
fi
mkdir -p -- "$(dirname -- "$log")"
if ! setsid "$@" </dev/null >/dev/null 2>"$log"; then cat -- "$log" >&2; exit 1; fi
if ! mountpoint -q -- "$mp"; then echo "sshfs succeeded but $mp is not mounted" >&2; cat -- "$log" >&2; exit 1; fi
echo "$action"`;

export function mountArgv(siteId: string, source: string, sshfs: readonly string[]): string[] {
  const p = storagePaths(siteId);
  return ['sh', '-c', MOUNT_SCRIPT, 'qm-mount', p.mount, source, p.log, ...sshfs];
}

/**
 * Unmount (a dead mount too: the mount table decides, not a stat), lazily if it is busy; then
 * remove the empty mount point and site directory and the log. Prints `unmounted`, `lazy` or
 * `absent`, then `dir removed` or `dir kept` (not empty: files written while it was not mounted).
 */
export const UNMOUNT_SCRIPT = `set -eu
mp=$1 sitedir=$2 log=$3
fm=$(command -v fusermount3 || command -v fusermount || echo fusermount)
mounted() { QM_MP="$mp" awk '$5 == ENVIRON["QM_MP"] { found = 1 } END { exit !found }' /proc/self/mountinfo; }
state=absent
if mounted; then
  if "$fm" -u -- "$mp" 2>/dev/null || umount -- "$mp" 2>/dev/null; then state=unmounted
  else "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"; state=lazy; fi
  # a mount stacked on another: take them all
  while mounted; do "$fm" -u -z -- "$mp" 2>/dev/null || umount -l -- "$mp"; done
fi
echo "$state"
rm -f -- "$log"
if [ ! -e "$mp" ] || rmdir -- "$mp" 2>/dev/null; then
  rmdir -- "$sitedir" 2>/dev/null || true
  echo "dir removed"
else
  echo "dir kept"
fi`;

export function unmountArgv(siteId: string): string[] {
  const p = storagePaths(siteId);
  return ['sh', '-c', UNMOUNT_SCRIPT, 'qm-unmount', p.mount, p.siteDir, p.log];
}

/** Exit 0 if the site's files are mounted (and answering) on this host. */
export function isMountedArgv(siteId: string): string[] {
  return ['mountpoint', '-q', '--', storagePaths(siteId).mount];
}
