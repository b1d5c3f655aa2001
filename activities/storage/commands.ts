import { siteNames } from '../../schema/site';
import { fingerprint } from '../ssh/pool';
import { remoteScript } from '../ssh/remoteScript';

/**
 * The site files: one directory per site on the storage host, mounted with sshfs on every app host
 * of the site. Everything the storage activities run, built and never run here (Kamal-style):
 * argument vectors whose scripts (the longer ones in the .sh files beside this module) are constants
 * taking each variable part as a positional argument (so no name, path or key ever becomes shell
 * syntax), and the pure text they write.
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
 * Archive (if an archive path is given) and remove a site's files directory (remove-files.sh): the
 * archive made only if there is none of that name yet, aside then linked into place, so a retry
 * keeps the whole archive. Prints `archive created|existing|none`, then `sha <hex> <bytes>` if
 * there is an archive, then `files removed|kept|absent` (kept: only archived, when asked to keep them).
 */
export const REMOVE_FILES_SCRIPT = remoteScript(__dirname, 'remove-files.sh');

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
 * Put `line` in the authorized keys file, replacing any other line for the same key, under a lock
 * (authorize-key.sh). Prints `unchanged` or `added`.
 */
export const AUTHORIZE_SCRIPT = remoteScript(__dirname, 'authorize-key.sh');

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
 * The app host's storage key, generated once, under a lock (storage-key.sh). Prints `created` or
 * `existing`, then the public key line.
 */
export const STORAGE_KEY_SCRIPT = remoteScript(__dirname, 'storage-key.sh');

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
 * Make the known_hosts lines of one host exactly the ones on stdin, other hosts' lines kept
 * (known-hosts.sh). Prints `unchanged` or `changed`.
 */
export const KNOWN_HOSTS_SCRIPT = remoteScript(__dirname, 'known-hosts.sh');

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
 * The mount on the app host (mount.sh): `unchanged` if mounted alive from `source`, `remounted`
 * if its sshfs had died, `mounted`; exit OtherMount if something else is mounted there, NotEmpty
 * if the unmounted directory holds files.
 */
export const MOUNT_SCRIPT = remoteScript(__dirname, 'mount.sh', {
  other_mount: StorageExit.OtherMount,
  not_empty: StorageExit.NotEmpty,
});

export function mountArgv(siteId: string, source: string, sshfs: readonly string[]): string[] {
  const p = storagePaths(siteId);
  return ['sh', '-c', MOUNT_SCRIPT, 'qm-mount', p.mount, source, p.log, ...sshfs];
}

/**
 * Unmount (a dead mount too), lazily if busy; remove the empty mount point, site directory and log
 * (unmount.sh). Prints `unmounted`, `lazy` or `absent`, then `dir removed` or `dir kept`.
 */
export const UNMOUNT_SCRIPT = remoteScript(__dirname, 'unmount.sh');

export function unmountArgv(siteId: string): string[] {
  const p = storagePaths(siteId);
  return ['sh', '-c', UNMOUNT_SCRIPT, 'qm-unmount', p.mount, p.siteDir, p.log];
}

/** isMountedArgv's exit when the mount table has no mount there (mountpoint(1)'s "not a mountpoint"). */
export const NOT_MOUNTED = 32;

/**
 * Exit 0 if the site's files are mounted on this host and answer; NOT_MOUNTED if the mount table
 * has no mount there; any other failure is a mount that does not answer (its sshfs cannot reach
 * the storage host: `mountpoint` gets EIO, and says so on stderr). The mount table is read
 * without touching the mount, which may hang or fail while its storage host is away.
 */
export const IS_MOUNTED_SCRIPT = `QM_MP="$1" awk '$5 == ENVIRON["QM_MP"] { found = 1 } END { exit !found }' /proc/self/mountinfo || exit ${NOT_MOUNTED}
exec mountpoint -- "$1" >/dev/null`;

export function isMountedArgv(siteId: string): string[] {
  return ['sh', '-c', IS_MOUNTED_SCRIPT, 'qm-is-mounted', storagePaths(siteId).mount];
}
