import { siteNames } from '../../schema/site';
import { tableRowCounts } from '../db/admin';
import { dumpPipelineArgv } from '../db/commands';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import { loadFreshArgv } from './commands';
import { ARTIFACTS } from './layout';
import type { DatabaseArtifact } from './manifest';
import type { ArtifactInfo, BackupStore } from './store';

/**
 * The site's database in a backup: dumped on its DB host (mysqldump --single-transaction, gzip
 * there), streamed through the worker into the store; loaded back the same way, into the site's
 * database or into a scratch one.
 */

/**
 * Dump the site's database into the backup. Row counts are read in consistent snapshots just
 * before and just after the dump: a table with the same count in both held that many rows in the
 * dump's own snapshot too (short of a delete and an insert cancelling out while it ran), so its
 * count is exact; a table written meanwhile (a live site's cache or sessions) is recorded as such.
 * Safe twice: it reads the database only, and the artifact is replaced whole (see BackupStore.put).
 */
export async function dumpSiteDatabase(
  pool: SshPool,
  store: BackupStore,
  o: { siteId: string; dbHost: string; backupId: string },
): Promise<DatabaseArtifact & { ms: number; countMs: number }> {
  const db = siteNames(o.siteId).database;
  const t0 = Date.now();
  const before = await tableRowCounts(pool, o.dbHost, db);
  const t1 = Date.now();
  const put = await store.put(o.siteId, o.backupId, ARTIFACTS.database, {
    host: o.dbHost,
    argv: dumpPipelineArgv(db),
  });
  const t2 = Date.now();
  const after = await tableRowCounts(pool, o.dbHost, db);
  const rowCounts: Record<string, number> = {};
  const changedDuringDump: DatabaseArtifact['changedDuringDump'] = {};
  for (const table of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const b = before[table];
    const a = after[table];
    if (a !== undefined && a === b) rowCounts[table] = a;
    else changedDuringDump[table] = { before: b ?? null, after: a ?? null };
  }
  const t3 = Date.now();
  return {
    file: ARTIFACTS.database,
    ...put,
    rowCounts,
    changedDuringDump,
    ms: t3 - t0,
    countMs: t1 - t0 + (t3 - t2),
  };
}

/**
 * Make `db` on the DB host exactly the backup's dump (dropped, recreated, loaded), streamed from
 * the store. The SHA-256 of what was streamed must be the manifest's, else Conflict (the caller
 * checked the stored copy first; this catches a change since). Safe twice: every run ends with
 * the same database.
 */
export async function loadDump(
  store: BackupStore,
  o: { siteId: string; backupId: string; dbHost: string; storageHost: string; db: string; sha256: string },
): Promise<ArtifactInfo> {
  const got = await store.get(o.siteId, o.backupId, ARTIFACTS.database, {
    host: o.dbHost,
    argv: loadFreshArgv(o.db),
  });
  if (got.sha256 !== o.sha256)
    throw failure(
      FailureType.Conflict,
      `the dump of backup ${o.backupId} read back with SHA-256 ${got.sha256}, not the manifest's ${o.sha256}: it was changed`,
      { host: o.storageHost, siteId: o.siteId, backupId: o.backupId },
    );
  return got;
}

/**
 * Problems with restored row counts against the manifest's: every table with an exact count must
 * be there with that count; every restored table must be one the manifest knows; tables written
 * during the dump must be there if they existed before and after it (their counts are reported).
 */
export function compareRowCounts(
  artifact: Pick<DatabaseArtifact, 'rowCounts' | 'changedDuringDump'>,
  restored: Record<string, number>,
): { problems: string[]; changedTablesRestored: Record<string, number> } {
  const problems: string[] = [];
  const changedTablesRestored: Record<string, number> = {};
  for (const [table, rows] of Object.entries(artifact.rowCounts)) {
    const got = restored[table];
    if (got === undefined) problems.push(`table ${table} is missing (the manifest has ${rows} rows)`);
    else if (got !== rows) problems.push(`table ${table} has ${got} rows, the manifest ${rows}`);
  }
  for (const [table, { before, after }] of Object.entries(artifact.changedDuringDump)) {
    const got = restored[table];
    if (got !== undefined) changedTablesRestored[table] = got;
    else if (before !== null && after !== null)
      problems.push(`table ${table} is missing (written during the dump)`);
  }
  for (const table of Object.keys(restored))
    if (!(table in artifact.rowCounts) && !(table in artifact.changedDuringDump))
      problems.push(`table ${table} is not in the manifest`);
  return { problems, changedTablesRestored };
}
