import { ApplicationFailure, CancellationScope } from '@temporalio/workflow';
import { failedAt, failureFacts } from '../protocol/failures';
import { RestoreSiteInput, type RestoreSiteResult } from '../protocol/operations';
import type { SiteRecord } from '../schema/site';
import { backup6h, step1m } from './lib/activities';
import { takeVerifiedBackup } from './lib/backup';
import { siteHealthyThroughProxies } from './lib/health';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import { addressesOf, siteRoute } from './lib/routes';
import { withSiteLock } from './lib/siteLock';
import { onEveryHost } from './lib/parallel';

/**
 * Restore a site, in place, from one of its verified backups, as ops would by hand:
 *   lock the site → check the backup (verified, checksums still match: else refuse, nothing
 *   touched) → safety backup of the site as it is → maintenance page → stop the containers →
 *   database and files from the backup → check row counts and files against the manifest → start
 *   the containers → leave maintenance → health check through the proxy.
 * If anything fails after the maintenance page went up, the site is put back from the safety
 * backup the same way and leaves maintenance, and the workflow fails with the first cause.
 * (Restoring into a new site, a clone, is not done here.)
 */
export async function restoreSite(input: RestoreSiteInput): Promise<RestoreSiteResult> {
  const { siteId, backupId, triggeredBy } = parseWorkflowInput(RestoreSiteInput, input, 'restoreSite input');
  const op = startOperation({
    operation: 'restore',
    siteId,
    triggeredBy,
    summary: `restore ${siteId} from backup ${backupId}`,
  });

  return withSiteLock(siteId, 'restore', op.progress, async (lock) => {
    const { record } = lock;
    if (record.state !== 'active' || !record.placement || !record.spec)
      throw ApplicationFailure.create({
        type: 'Conflict',
        message: `site ${siteId} is ${record.state}: only an active site is restored in place`,
        nonRetryable: true,
      });
    const { storageHost } = record.placement;

    op.step('check the backup');
    await backup6h.checkBackup({ siteId, storageHost, backupId });

    const safetyBackup = await takeVerifiedBackup(lock, op, 'safety');

    try {
      await putBack(record, backupId, op);
    } catch (err) {
      const failedStep = op.progress.step;
      const facts = failureFacts(err);
      op.step(`restoring the safety backup ${safetyBackup.backupId} (failed at ${failedStep})`);
      let rollback =
        'the site was put back as it was before, from the safety backup, and is out of maintenance';
      try {
        await CancellationScope.nonCancellable(() => putBack(record, safetyBackup.backupId, op));
      } catch (rollbackErr) {
        rollback =
          `PUTTING THE SITE BACK FAILED too (${rootMessage(rollbackErr)}): it may still show the maintenance page; ` +
          `ops must restore backup ${safetyBackup.backupId} by hand`;
      }
      throw ApplicationFailure.create({
        type: 'RestoreFailed',
        message: `${failedAt(`restoring ${siteId} from ${backupId}`, failedStep, facts)}; ${rollback}`,
        details: [{ failedStep, failedHost: facts.host, safetyBackup: safetyBackup.backupId }],
        cause: err instanceof Error ? err : undefined,
        nonRetryable: true,
      });
    }
    op.finish();
    return { siteId, restored: backupId, safetyBackup };
  });
}

/** Maintenance page, containers stopped, data from the backup, checked, containers back, page off. */
async function putBack(
  record: SiteRecord,
  backupId: string,
  op: ReturnType<typeof startOperation>,
): Promise<void> {
  const siteId = record.siteId;
  const placement = record.placement!;
  const { dbHost, storageHost } = placement;
  const where = { siteId, backupId, storageHost };
  const addresses = addressesOf(await step1m.listHosts());
  const containerHosts = [...new Set([placement.cacheHost, ...placement.appHosts])];

  op.step(`${backupId}: maintenance page`);
  for (const host of placement.proxyHosts)
    await step1m.putSiteRoute({
      host,
      route: siteRoute(record.spec!, placement, addresses, { mode: 'maintenance' }),
    });

  op.step(`${backupId}: stop the containers`);
  await onEveryHost(containerHosts, (host) => step1m.stopSiteContainers({ siteId, host }));

  op.step(`${backupId}: database`);
  await backup6h.restoreBackupDatabase({ ...where, dbHost });
  op.step(`${backupId}: files`);
  await backup6h.restoreBackupFiles(where);

  op.step(`${backupId}: check row counts and files`);
  const check = await backup6h.checkRestoredSite({ ...where, dbHost });
  if (!check.ok)
    throw ApplicationFailure.create({
      type: 'RestoreCheckFailed',
      message: `the restored site does not match backup ${backupId}: ${check.problems.join('; ')}`,
      nonRetryable: true,
    });

  op.step(`${backupId}: start the containers`);
  await onEveryHost(containerHosts, (host) => step1m.startSiteContainers({ siteId, host }));

  op.step(`${backupId}: leave maintenance`);
  for (const host of placement.proxyHosts)
    await step1m.putSiteRoute({ host, route: siteRoute(record.spec!, placement, addresses) });

  op.step(`${backupId}: health check through the proxy`);
  const profile = await step1m.loadProfile({ name: record.spec!.profile });
  await siteHealthyThroughProxies(
    { placement, domains: record.spec!.domains, profile },
    { mode: 'each-proxy-in-turn' },
  );
}
