import { ApplicationFailure, patched } from '@temporalio/workflow';
import { DeprovisionSiteInput, type DeprovisionSiteResult } from '../protocol/operations';
import { quick, slow } from './lib/activities';
import { parseWorkflowInput } from './lib/input';
import { startOperation } from './lib/operation';
import { withSiteLock } from './lib/siteLock';

/**
 * Remove a site for good, as ops would by hand:
 *   lock the site → final backup (database snapshot, files archive) → routes off the proxies →
 *   containers off every host → files unmounted → release folders off every app host →
 *   database, user and secret dropped → files removed → record it deleted.
 * The site's Git repository is kept (the customer's code; removing it is ops' decision).
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
      const name = `final-${new Date()
        .toISOString()
        .replace(/[-:.TZ]/g, '')
        .slice(0, 14)}`;
      const snapshot = await slow.snapshotSiteDatabase({ siteId, dbHost: placement.dbHost, name });
      finalBackup = {
        databaseSnapshot: snapshot.path,
        filesArchive: `/srv/qm/archive/${siteId}/${name}.tar.gz`,
      };
      await lock.update({ state: 'deprovisioning' });
      await slow.removeSiteFiles({
        siteId,
        storageHost: placement.storageHost,
        archiveName: name,
        keepFiles: true,
      });
    }

    op.step('routes');
    for (const host of placement.proxyHosts) await quick.removeSiteRoute({ host, siteId });

    op.step('containers');
    const inventory = await quick.listHosts();
    const everyHost = inventory.map((h) => h.name);
    await Promise.all(everyHost.map((host) => quick.removeSiteContainers({ siteId, host })));

    op.step('files mounts');
    await Promise.all(placement.appHosts.map((host) => quick.unmountSiteFiles({ siteId, host })));

    let keptRepository: DeprovisionSiteResult['keptRepository'];
    if (patched('deprovision-release-folders')) {
      // every app host, not only the placement's: a sweep, like the containers'
      op.step('release folders');
      const appHosts = inventory.filter((h) => h.roles.includes('app')).map((h) => h.name);
      await Promise.all(appHosts.map((host) => quick.removeSiteReleases({ siteId, host })));
      const gitHost = inventory.find((h) => h.roles.includes('git'));
      if (gitHost && record.spec) keptRepository = { repo: record.spec.git.repo, host: gitHost.name };
    }

    op.step('database');
    await quick.dropSiteDatabase({ siteId, dbHost: placement.dbHost });

    op.step('files');
    await quick.removeSiteFiles({ siteId, storageHost: placement.storageHost });

    await lock.update({ state: 'deleted', placement: undefined, release: undefined });
    op.finish();
    return { siteId, state: 'deleted', finalBackup, keptRepository };
  });
}
