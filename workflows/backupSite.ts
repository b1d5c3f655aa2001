import { ApplicationFailure, proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE } from '../activities/errors';
import { backupIdFor } from '../protocol/ids';
import { BackupSiteInput, type BackupSiteResult, type TakenBackup } from '../protocol/operations';
import type { Placement, SiteRecord } from '../schema/site';
import { quick } from './lib/activities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import { planRetention, RETENTION } from './lib/retention';
import { withSiteLock, type SiteLock } from './lib/siteLock';

type Operation = ReturnType<typeof startOperation>;

/**
 * Dumps, archives, verifications and restores of large sites take hours, not minutes: a long
 * start-to-close bound, and a heartbeat (every streamed chunk, every second of a quiet command)
 * so that a dead worker is noticed in 30 s and the step retried elsewhere.
 */
export const long = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: [...NON_RETRYABLE],
  },
});

/**
 * Back a site up, as ops would by hand:
 *   lock the site → dump the database (consistent, gzipped on the DB host, streamed to the storage
 *   host) → archive the files on the storage host → manifest → verify (restore both into scratch
 *   space and compare) → record it as the site's last good backup → prune old backups by the plan.
 * A backup that does not verify fails the workflow (BackupVerificationFailed) and counts for
 * nothing: the site's last good backup stays the previous one, and nothing is pruned.
 */
export async function backupSite(input: BackupSiteInput): Promise<BackupSiteResult> {
  const { siteId, kind, prune, triggeredBy } = parseWorkflowInput(BackupSiteInput, input, 'backupSite input');
  const op = startOperation({
    operation: 'backup',
    siteId,
    triggeredBy,
    summary: `${kind} backup of ${siteId}`,
  });

  return withSiteLock(siteId, 'backup', op.progress, async (lock) => {
    const placement = backupPlacement(lock.record);
    const taken = await takeVerifiedBackup(lock, op, kind);

    let retention: BackupSiteResult['retention'] = { kept: [], pruned: [] };
    if (prune) {
      op.step('retention');
      try {
        retention = await applyRetention(siteId, placement.storageHost, lock.record.spec?.plan);
      } catch (err) {
        // the backup is good and recorded: a prune that failed is reported, and the next run retries it
        retention.error = rootMessage(err);
      }
    }
    upsertMemo({
      summary: `${kind} backup of ${siteId}: ${taken.backupId} verified; kept ${retention.kept.length}, pruned ${retention.pruned.length}${
        retention.error ? `; PRUNING FAILED: ${retention.error}` : ''
      }`,
      retention,
    });
    op.finish();
    return { siteId, ...taken, retention };
  });
}

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
  const database = await long.backupDatabase({ ...where, dbHost });
  op.progress.hosts[dbHost] = `dumped ${database.bytes} bytes gzipped`;

  op.step(`${kind} backup ${backupId}: files`);
  op.progress.hosts[storageHost] = 'archiving the files';
  const files = await long.backupFiles(where);
  op.progress.hosts[storageHost] = `archived ${files.files} files in ${files.bytes} bytes`;

  op.step(`${kind} backup ${backupId}: manifest`);
  const { ms: _ms, countMs: _countMs, ...databaseArtifact } = database;
  await quick.writeBackupManifest({
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
  const verification = await long.verifyBackup({ ...where, dbHost, at: new Date().toISOString() });
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

/** Prune the site's backups by its plan (starter if it has none recorded). */
async function applyRetention(
  siteId: string,
  storageHost: string,
  plan: keyof typeof RETENTION | undefined,
): Promise<BackupSiteResult['retention']> {
  const listed = await quick.listBackups({ siteId, storageHost });
  const decision = planRetention(listed, RETENTION[plan ?? 'starter'], new Date());
  const pruned: string[] = [];
  for (const p of decision.prune) {
    await quick.deleteBackup({ siteId, storageHost, backupId: p.backupId });
    pruned.push(p.backupId);
  }
  return { kept: decision.keep.map((k) => k.backupId), pruned };
}
