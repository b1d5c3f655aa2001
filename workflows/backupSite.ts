import { upsertMemo } from '@temporalio/workflow';
import { BackupSiteInput, type BackupSiteResult } from '../protocol/operations';
import { step1m } from './lib/activities';
import { backupPlacement, takeVerifiedBackup } from './lib/backup';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import { planRetention, RETENTION } from './lib/retention';
import { withSiteLock } from './lib/siteLock';

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

/** Prune the site's backups by its plan (starter if it has none recorded). */
async function applyRetention(
  siteId: string,
  storageHost: string,
  plan: keyof typeof RETENTION | undefined,
): Promise<BackupSiteResult['retention']> {
  const listed = await step1m.listBackups({ siteId, storageHost });
  const decision = planRetention(listed, RETENTION[plan ?? 'starter'], new Date());
  const pruned: string[] = [];
  for (const p of decision.prune) {
    await step1m.deleteBackup({ siteId, storageHost, backupId: p.backupId });
    pruned.push(p.backupId);
  }
  return { kept: decision.keep.map((k) => k.backupId), pruned };
}
