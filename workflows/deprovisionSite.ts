import { ApplicationFailure } from '@temporalio/workflow';
import { DeprovisionSiteInput, type DeprovisionSiteResult } from '../protocol/operations';
import { finalBackupName, timeOfFinalBackup } from '../protocol/ids';
import { long15m, step1m } from './lib/activities';
import { parseWorkflowInput } from './lib/input';
import { FINAL_BACKUP_DAYS } from './lib/retention';
import { startOperation } from './lib/operation';
import { withSiteLock } from './lib/siteLock';
import { onEveryHost } from './lib/parallel';

/**
 * Remove a site for good, as ops would by hand:
 *   lock the site → final backup (database snapshot, files archive) → routes off the proxies →
 *   containers off every host → files unmounted → release folders off every app host →
 *   database, user, secret and deploy snapshots dropped → files removed → record it deleted.
 * The final backup is kept FINAL_BACKUP_DAYS (the nightly run removes it after that); the site's Git
 * repository and its backups are kept (the customer's code and data; removing them is ops' decision).
 * Every step tolerates "already gone", so a deprovision that stopped half-way, run again, finishes
 * the job; it also sweeps every host, so leftovers of a failed provision go too.
 */
export async function deprovisionSite(input: DeprovisionSiteInput): Promise<DeprovisionSiteResult> {
  const { siteId, skipFinalBackup, triggeredBy } = parseWorkflowInput(
    DeprovisionSiteInput,
    input,
    'deprovisionSite input',
  );
  const op = startOperation({
    operation: 'deprovision',
    siteId,
    triggeredBy,
    summary: `deprovision ${siteId}`,
  });

  return withSiteLock(siteId, 'deprovision', op.progress, async (lock) => {
    const { record } = lock;
    if (record.state === 'deleted') return { siteId, state: 'deleted' };
    if (record.state === 'new' || !record.placement)
      throw ApplicationFailure.create({
        type: 'InvalidInput',
        message: `site ${siteId} is not known to the platform (state ${record.state}): nothing to deprovision`,
        nonRetryable: true,
      });
    const { placement } = record;
    await lock.update({ state: 'deprovisioning' });
    op.hosts([...placement.appHosts, placement.dbHost, placement.storageHost, ...placement.proxyHosts]);

    let finalBackup: DeprovisionSiteResult['finalBackup'];
    if (!skipFinalBackup) {
      op.step('final backup');
      const name = finalBackupName(new Date());
      const snapshot = await long15m.snapshotSiteDatabase({ siteId, dbHost: placement.dbHost, name });
      finalBackup = {
        databaseSnapshot: `${placement.dbHost}:${snapshot.path}`,
        filesArchive: `${placement.storageHost}:/srv/qm/archive/${siteId}/${name}.tar.gz`,
        // the time the nightly run goes by: the one in the name (to the second)
        keptUntil: new Date(
          timeOfFinalBackup(name)!.getTime() + FINAL_BACKUP_DAYS * 86_400_000,
        ).toISOString(),
      };
      await lock.update({ state: 'deprovisioning' });
      await long15m.removeSiteFiles({
        siteId,
        storageHost: placement.storageHost,
        archiveName: name,
        keepFiles: true,
      });
    }

    op.step('routes');
    for (const host of placement.proxyHosts) await step1m.removeSiteRoute({ host, siteId });

    op.step('containers');
    const inventory = await step1m.listHosts();
    const everyHost = inventory.map((h) => h.name);
    await onEveryHost(everyHost, (host) => step1m.removeSiteContainers({ siteId, host }));

    op.step('files mounts');
    await onEveryHost(placement.appHosts, (host) => step1m.unmountSiteFiles({ siteId, host }));

    // every app host, not only the placement's: a sweep, like the containers'
    op.step('release folders');
    const appHosts = inventory.filter((h) => h.roles.includes('app')).map((h) => h.name);
    await onEveryHost(appHosts, (host) => step1m.removeSiteReleases({ siteId, host }));
    const gitHost = inventory.find((h) => h.roles.includes('git'));
    const keptRepository: DeprovisionSiteResult['keptRepository'] =
      gitHost && record.spec ? { repo: record.spec.git.repo, host: gitHost.name } : undefined;

    op.step('database');
    await step1m.dropSiteDatabase({ siteId, dbHost: placement.dbHost });
    // the deploys' snapshots of a database that is gone (the final backup's snapshot stays)
    await step1m.pruneDeploySnapshots({ siteId, dbHost: placement.dbHost, keepReleases: [] });

    op.step('files');
    await step1m.removeSiteFiles({ siteId, storageHost: placement.storageHost });

    await lock.update({ state: 'deleted', placement: undefined, release: undefined });
    op.finish();
    return { siteId, state: 'deleted', finalBackup, keptRepository };
  });
}
