import { mariadbArgv, recreateDatabaseSql } from '../db/commands';
import { remoteScript } from '../ssh/remoteScript';

/**
 * Everything the backup activities run on the hosts, built and never run here: argument vectors
 * whose scripts (the longer ones in the .sh files beside this module) are constants taking each
 * variable part as a positional argument (no name or path ever becomes shell syntax). Scripts
 * print one result line the activities parse.
 */

/** Exit statuses that mean something other than "a command failed". */
export const BackupExit = {
  /** What was to be read (an artifact, the site's files, a partial) is not there. */
  Missing: 3,
  /** An artifact does not match its checksum. */
  Corrupt: 4,
} as const;

// ------------------------------------------------------------------ writing artifacts

/**
 * `DIR NAME`: stdin into a new temporary file in DIR (made root-only if absent), hashed as it is
 * written (`tee | sha256sum`, under pipefail: a full disk fails here), flushed to disk. Prints
 * `TMP SHA256 BYTES`. The file is not yet visible under NAME: COMMIT_SCRIPT renames it once the
 * worker has compared checksums, so an upload cut short (a worker killed mid-stream, whose
 * channel's stdin then simply ends) can never pass for a whole artifact.
 */
export const RECEIVE_SCRIPT = `set -euo pipefail
dir=$1 name=$2
# /srv/qm above the backup root stays 0755 whoever makes it first (nginx reads /srv/qm/proxy on a host that also keeps backups)
root=\${dir%/backups/*}
[ "$root" = "$dir" ] || (umask 022; mkdir -p -- "$root")
umask 077
mkdir -p -- "$dir"
tmp=$(mktemp -- "$dir/.$name.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 143' TERM INT HUP
sum=$(tee -- "$tmp" | sha256sum)
sync -- "$tmp"
trap - EXIT
echo "$tmp \${sum%% *} $(stat -c %s -- "$tmp")"`;

export function receiveArgv(dir: string, name: string): string[] {
  return ['bash', '-c', RECEIVE_SCRIPT, 'qm-receive', dir, name];
}

/**
 * `DIR NAME TMP`: rename the received temporary file to NAME (atomically replacing an earlier
 * attempt's), drop any other partial of NAME (left by attempts that died), flush the directory.
 * Exit Missing if TMP is gone (a later attempt swept it: that attempt wins).
 */
export const COMMIT_SCRIPT = `set -euo pipefail
dir=$1 name=$2 tmp=$3
case "$tmp" in "$dir/.$name.partial."*) ;; *) echo "qm: $tmp is not a partial of $dir/$name" >&2; exit 2 ;; esac
[ -f "$tmp" ] || { echo "qm: $tmp is gone" >&2; exit ${BackupExit.Missing}; }
mv -f -- "$tmp" "$dir/$name"
for f in "$dir/.$name.partial."*; do [ -e "$f" ] && rm -f -- "$f"; done
sync -- "$dir"
echo committed`;

export function commitArgv(dir: string, name: string, tmp: string): string[] {
  return ['bash', '-c', COMMIT_SCRIPT, 'qm-commit', dir, name, tmp];
}

/** `DIR NAME`: stdin (a small file: the manifest) written aside, flushed, renamed into place. */
export const WRITE_SMALL_FILE_SCRIPT = `set -euo pipefail
dir=$1 name=$2
# /srv/qm above the backup root stays 0755 whoever makes it first (nginx reads /srv/qm/proxy on a host that also keeps backups)
root=\${dir%/backups/*}
[ "$root" = "$dir" ] || (umask 022; mkdir -p -- "$root")
umask 077
mkdir -p -- "$dir"
tmp=$(mktemp -- "$dir/.$name.partial.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp"
sync -- "$tmp"
mv -f -- "$tmp" "$dir/$name"
trap - EXIT
sync -- "$dir"
echo written`;

export function writeSmallFileArgv(dir: string, name: string): string[] {
  return ['bash', '-c', WRITE_SMALL_FILE_SCRIPT, 'qm-write', dir, name];
}

/** An artifact on stdout (exit Missing if absent). */
export function readArgv(path: string): string[] {
  return [
    'sh',
    '-c',
    `[ -f "$1" ] || { echo "qm: no $1" >&2; exit ${BackupExit.Missing}; }; exec cat -- "$1"`,
    'qm-read',
    path,
  ];
}

// ------------------------------------------------------------------ the site's files

/**
 * The shell function `digest DIR` (tree-digest.sh): `SHA FILES BYTES` of a directory tree. Two
 * trees with the same digest hold the same files with the same contents and modes.
 */
const DIGEST_FN = remoteScript(__dirname, 'tree-digest.sh');

/**
 * `SRC DIR NAME`: tar.gz of SRC made on the storage host into DIR/NAME, hashed as it is written
 * (archive-files.sh). Prints `SHA BYTES ENTRIES FILES FILEBYTES`. Exit Missing if SRC is absent.
 */
export const ARCHIVE_FILES_SCRIPT = remoteScript(__dirname, 'archive-files.sh', {
  missing: BackupExit.Missing,
});

export function archiveFilesArgv(src: string, dir: string, name: string): string[] {
  return ['bash', '-c', ARCHIVE_FILES_SCRIPT, 'qm-archive-files', src, dir, name];
}

/**
 * `ARCHIVE SHA SCRATCH BASE`: check the archive's checksum (exit Corrupt), extract it into a fresh
 * SCRATCH, print `DIGEST …` of SCRATCH/BASE, remove SCRATCH (verify-files.sh).
 */
export const VERIFY_FILES_SCRIPT = remoteScript(__dirname, 'verify-files.sh', {
  missing: BackupExit.Missing,
  corrupt: BackupExit.Corrupt,
});

export function verifyFilesArgv(archive: string, sha256: string, scratch: string, base: string): string[] {
  return ['bash', '-c', VERIFY_FILES_SCRIPT, 'qm-verify-files', archive, sha256, scratch, base];
}

/**
 * `ARCHIVE SHA FILES STAGING`: make FILES exactly the archive (checksum first, exit Corrupt with
 * nothing touched; extracted beside FILES, then swapped in); safe twice (restore-files.sh). Prints
 * `DIGEST …` of the restored FILES.
 */
export const RESTORE_FILES_SCRIPT = remoteScript(__dirname, 'restore-files.sh', {
  missing: BackupExit.Missing,
  corrupt: BackupExit.Corrupt,
});

export function restoreFilesArgv(archive: string, sha256: string, files: string, staging: string): string[] {
  return ['bash', '-c', RESTORE_FILES_SCRIPT, 'qm-restore-files', archive, sha256, files, staging];
}

/** `DIR`: `DIGEST …` of a tree (exit Missing if absent). */
export const DIGEST_SCRIPT = `set -euo pipefail
${DIGEST_FN}
[ -d "$1" ] || { echo "qm: no $1" >&2; exit ${BackupExit.Missing}; }
echo "DIGEST $(digest "$1")"`;

export function digestArgv(dir: string): string[] {
  return ['bash', '-c', DIGEST_SCRIPT, 'qm-digest', dir];
}

export interface TreeDigest {
  digest: string;
  files: number;
  bytes: number;
}

export function parseDigest(stdout: string): TreeDigest {
  const m = /^DIGEST ([0-9a-f]{64}) (\d+) (\d+)$/m.exec(stdout);
  if (!m) throw new Error('no DIGEST line in the output');
  return { digest: m[1]!, files: Number(m[2]), bytes: Number(m[3]) };
}

// ------------------------------------------------------------------ the store

/**
 * `DIR NAME=SHA...`: each artifact's SHA-256 as read back from disk, against the expected one.
 * Prints `ok|mismatch|missing NAME ACTUAL` per artifact; exits 0 whatever it found.
 */
export const CHECK_SUMS_SCRIPT = `set -uo pipefail
dir=$1; shift
for pair in "$@"; do
  name=\${pair%%=*} want=\${pair#*=}
  if [ ! -f "$dir/$name" ]; then echo "missing $name -"; continue; fi
  got=$(sha256sum <"$dir/$name") || { echo "missing $name -"; continue; }
  got=\${got%% *}
  if [ "$got" = "$want" ]; then echo "ok $name $got"; else echo "mismatch $name $got"; fi
done`;

export function checkSumsArgv(dir: string, expected: Record<string, string>): string[] {
  return [
    'bash',
    '-c',
    CHECK_SUMS_SCRIPT,
    'qm-check-sums',
    dir,
    ...Object.entries(expected).map(([name, sha]) => `${name}=${sha}`),
  ];
}

/**
 * `SITEDIR`: one line per backup directory: `ID MTIME MANIFEST-BASE64` (`-` when it has no manifest:
 * a backup that never finished). Prints nothing if the site has no backups.
 */
export const LIST_BACKUPS_SCRIPT = `set -euo pipefail
[ -d "$1" ] || exit 0
cd -- "$1"
for d in */; do
  [ -d "$d" ] || continue
  id=\${d%/}
  if [ -f "$id/manifest.json" ]; then m=$(base64 -w0 -- "$id/manifest.json"); else m=-; fi
  echo "$id $(stat -c %Y -- "$id") $m"
done`;

export function listBackupsArgv(siteDir: string): string[] {
  return ['bash', '-c', LIST_BACKUPS_SCRIPT, 'qm-list-backups', siteDir];
}

/** `DIR`: remove a backup directory; prints `removed` or `absent`. */
export const REMOVE_BACKUP_SCRIPT = `set -eu
if [ -e "$1" ]; then rm -rf -- "$1"; echo removed; else echo absent; fi`;

export function removeBackupArgv(dir: string): string[] {
  return ['sh', '-c', REMOVE_BACKUP_SCRIPT, 'qm-remove-backup', dir];
}

// ------------------------------------------------------------------ the database

/**
 * `RECREATE-SQL CLIENT-ARGV...`: drop and recreate the database, then load a gzipped dump from
 * stdin (pipefail: a dump that does not gunzip, or SQL that fails, fails the load). The result is
 * exactly the dump, however often it runs.
 */
export const LOAD_FRESH_SCRIPT = `set -euo pipefail
recreate=$1; shift
mariadb --batch <<<"$recreate"
gunzip -c | "$@"`;

export function loadFreshArgv(db: string): string[] {
  return ['bash', '-c', LOAD_FRESH_SCRIPT, 'qm-load-fresh', recreateDatabaseSql(db), ...mariadbArgv(db)];
}
