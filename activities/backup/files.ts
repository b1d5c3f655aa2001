import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import { activityIO } from '../context';
import {
  archiveFilesArgv,
  BackupExit,
  digestArgv,
  parseDigest,
  restoreFilesArgv,
  verifyFilesArgv,
  type TreeDigest,
} from './commands';
import { ARTIFACTS, backupDir, restoreStagingDir, SCRATCH_ROOT, scratchTag, siteFilesDir } from './layout';
import type { FilesArtifact } from './manifest';

/**
 * The site's files in a backup. The files live on the storage host, which is where SshHostStore
 * keeps the backups too: the archive is made, checked and unpacked there, without the bytes
 * crossing the network. (A store elsewhere would stream `tar` through BackupStore.put instead.)
 */

const LONG_MS = 4 * 60 * 60_000;

async function run(pool: SshPool, host: string, argv: string[], what: string) {
  const r = await pool.exec(host, argv, { ...activityIO(), timeoutMs: LONG_MS, check: false });
  if (r.code === 0) return r;
  const last = r.stderr.trim().split('\n').pop()?.slice(0, 400) ?? '';
  const type =
    r.code === BackupExit.Missing || r.code === BackupExit.Corrupt
      ? FailureType.Conflict
      : FailureType.CommandFailed;
  throw failure(type, `${host}: ${what} failed (exit ${r.code ?? 'by signal ' + r.signal}): ${last}`, {
    host,
    code: r.code,
    stderr: r.stderr.slice(-2000),
  });
}

/**
 * tar.gz of /srv/qm/files/<site> into the backup, made on the storage host. Safe twice: the archive
 * is written aside and renamed over any earlier one; the site's files are only read.
 */
export async function archiveSiteFiles(
  pool: SshPool,
  o: { storageHost: string; siteId: string; backupId: string },
): Promise<FilesArtifact> {
  const r = await run(
    pool,
    o.storageHost,
    archiveFilesArgv(siteFilesDir(o.siteId), backupDir(o.siteId, o.backupId), ARTIFACTS.files),
    `archiving the files of ${o.siteId}`,
  );
  const m = /^([0-9a-f]{64}) (\d+) (\d+) (\d+) (\d+)$/m.exec(r.stdout);
  if (!m)
    throw failure(FailureType.CommandFailed, `${o.storageHost}: the archive script printed no result`, {
      host: o.storageHost,
    });
  return {
    file: ARTIFACTS.files,
    sha256: m[1]!,
    bytes: Number(m[2]),
    entries: Number(m[3]),
    files: Number(m[4]),
    fileBytes: Number(m[5]),
  };
}

/**
 * Check the archive's checksum on the storage host, unpack it into scratch space there, and return
 * the digest of the tree it holds (the scratch is removed however it ends). Read-only on the
 * backup, so safe twice. A checksum mismatch is Conflict.
 */
export async function unpackAndDigest(
  pool: SshPool,
  o: { storageHost: string; siteId: string; backupId: string; sha256: string },
): Promise<TreeDigest> {
  const scratch = `${SCRATCH_ROOT}/${scratchTag(o.siteId, o.backupId)}-files`;
  const r = await run(
    pool,
    o.storageHost,
    verifyFilesArgv(`${backupDir(o.siteId, o.backupId)}/${ARTIFACTS.files}`, o.sha256, scratch, o.siteId),
    `unpacking the files of backup ${o.backupId}`,
  );
  return parseDigest(r.stdout);
}

/**
 * Make /srv/qm/files/<site> exactly the archive (see RESTORE_FILES_SCRIPT: checksum first, then
 * unpack beside it and swap). Safe twice: any run ends with the same tree. The digest of the
 * restored tree is returned.
 */
export async function restoreSiteFiles(
  pool: SshPool,
  o: { storageHost: string; siteId: string; backupId: string; sha256: string },
): Promise<TreeDigest> {
  const r = await run(
    pool,
    o.storageHost,
    restoreFilesArgv(
      `${backupDir(o.siteId, o.backupId)}/${ARTIFACTS.files}`,
      o.sha256,
      siteFilesDir(o.siteId),
      restoreStagingDir(o.siteId),
    ),
    `restoring the files of ${o.siteId} from ${o.backupId}`,
  );
  return parseDigest(r.stdout);
}

/** The digest of the site's live files tree. Read-only. */
export async function siteFilesDigest(
  pool: SshPool,
  o: { storageHost: string; siteId: string },
): Promise<TreeDigest> {
  const r = await run(
    pool,
    o.storageHost,
    digestArgv(siteFilesDir(o.siteId)),
    `reading the files of ${o.siteId}`,
  );
  return parseDigest(r.stdout);
}
