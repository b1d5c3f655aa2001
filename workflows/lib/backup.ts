import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { Placement, SiteRecord } from '../../schema/site';
import { backup6h, step1m } from './activities';
import { backupIdFor } from '../../protocol/ids';
import type { TakenBackup } from '../../protocol/operations';
import type { startOperation } from './operation';
import type { SiteLock } from './siteLock';

type Operation = ReturnType<typeof startOperation>;

/** The placement of a site that has data to back up (active or suspended), else Conflict. */
export function backupPlacement(record: SiteRecord): Placement {
  if (!['active', 'suspended'].includes(record.state) || !record.placement)
    throw ApplicationFailure.create({
      type: 'Conflict',
      message: `site ${record.siteId} is ${record.state}: only an active or suspended site has data to back up`,
      nonRetryable: true,
    });
  return record.placement;
}

/**
 * The backup steps, for a workflow that holds the site's lock (backupSite, and restoreSite for its
 * safety backup). The backup id comes from the workflow (its start time and id), so a retried step,
 * or a retried workflow, writes to the same place. Updates the site's lastGoodBackup once verified.
 */
export async function takeVerifiedBackup(
  lock: SiteLock,
  op: Operation,
  kind: 'scheduled' | 'on-demand' | 'safety',
): Promise<TakenBackup> {
  const { siteId } = lock;
  const placement = backupPlacement(lock.record);
  const { dbHost, storageHost } = placement;
  const info = workflowInfo();
  const backupId = backupIdFor(info.startTime, `${info.workflowId}/${kind}`);
  const createdAt = info.startTime.toISOString();
  const where = { siteId, backupId, storageHost };
  op.hosts([dbHost, storageHost]);

  op.step(`${kind} backup ${backupId}: database`);
  op.progress.hosts[dbHost] = 'dumping the database';
  const database = await backup6h.backupDatabase({ ...where, dbHost });
  op.progress.hosts[dbHost] = `dumped ${database.bytes} bytes gzipped`;

  op.step(`${kind} backup ${backupId}: files`);
  op.progress.hosts[storageHost] = 'archiving the files';
  const files = await backup6h.backupFiles(where);
  op.progress.hosts[storageHost] = `archived ${files.files} files in ${files.bytes} bytes`;

  op.step(`${kind} backup ${backupId}: manifest`);
  const { ms: _ms, countMs: _countMs, ...databaseArtifact } = database;
  await step1m.writeBackupManifest({
    siteId,
    backupId,
    kind,
    createdAt,
    workflowId: info.workflowId,
    release: lock.record.release,
    plan: lock.record.spec?.plan,
    dbHost,
    storageHost,
    database: databaseArtifact,
    files,
  });

  op.step(`${kind} backup ${backupId}: verify`);
  const verification = await backup6h.verifyBackup({ ...where, dbHost, at: new Date().toISOString() });
  if (!verification.verified)
    throw ApplicationFailure.create({
      type: 'BackupVerificationFailed',
      message: `backup ${backupId} of ${siteId} did not verify: ${verification.problems.join('; ')}`,
      details: [{ backupId, problems: verification.problems }],
      nonRetryable: true,
    });
  await lock.update({ lastGoodBackup: { backupId, at: createdAt } });

  const rows = Object.values(database.rowCounts).reduce((a, b) => a + b, 0);
  return {
    backupId,
    location: `${storageHost}:/srv/qm/backups/${siteId}/${backupId}`,
    createdAt,
    database: {
      bytes: database.bytes,
      tables: Object.keys(database.rowCounts).length + Object.keys(database.changedDuringDump).length,
      rows,
      changedDuringDump: Object.keys(database.changedDuringDump),
    },
    files: { bytes: files.bytes, files: files.files, fileBytes: files.fileBytes },
  };
}
