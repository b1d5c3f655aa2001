import { createHash } from 'node:crypto';
import { FILES_ROOT } from '../storage/commands';

/**
 * Where backups live and what they are called. On the storage host:
 *
 *   /srv/qm/backups/<siteId>/<backupId>/db.sql.gz       mysqldump --single-transaction | gzip
 *   /srv/qm/backups/<siteId>/<backupId>/files.tar.gz    tar.gz of /srv/qm/files/<siteId>
 *   /srv/qm/backups/<siteId>/<backupId>/manifest.json   what, when, sizes, checksums, row counts, verified
 *
 * An artifact appears under its name only once it is complete and its checksum matched (written
 * as a temporary `.NAME.partial.XXXXXX` first): a name that exists is a whole artifact.
 */

export const BACKUP_ROOT = '/srv/qm/backups';
/** Scratch space for verification and restores, on the same file system (renames stay renames). */
export const SCRATCH_ROOT = `${BACKUP_ROOT}/.scratch`;
/** Where a restore unpacks files before swapping them in: beside the live tree (same file system). */
export function restoreStagingDir(siteId: string): string {
  return `${FILES_ROOT}/.restore-${siteId}`;
}

export const ARTIFACTS = { database: 'db.sql.gz', files: 'files.tar.gz' } as const;
export const MANIFEST = 'manifest.json';

export function backupDir(siteId: string, backupId: string): string {
  return `${BACKUP_ROOT}/${siteId}/${backupId}`;
}

export function siteBackupsDir(siteId: string): string {
  return `${BACKUP_ROOT}/${siteId}`;
}

export function siteFilesDir(siteId: string): string {
  return `${FILES_ROOT}/${siteId}`;
}

/** A short, stable tag for scratch names: the same backup always gets the same scratch. */
export function scratchTag(siteId: string, backupId: string): string {
  return createHash('sha256').update(`${siteId}/${backupId}`).digest('hex').slice(0, 12);
}

/**
 * The scratch database the site's backups are verified in, on its DB host (dropped afterwards).
 * One per site, not per backup: a verification cut short where the drop cannot follow (the DB
 * host's MariaDB stopped under the load) leaves it behind, and the site's next verification
 * replaces it and drops it. Verifications of one site never overlap (each holds the site's lock).
 */
export function verifyDatabaseName(siteId: string): string {
  return `qm_verify_${createHash('sha256').update(siteId).digest('hex').slice(0, 12)}`;
}
