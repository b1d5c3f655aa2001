import { ApplicationFailure, patched, upsertMemo } from '@temporalio/workflow';
import { INITIAL_RELEASE } from '../protocol/ids';
import { ProvisionSiteInput, type ProvisionSiteResult } from '../protocol/operations';
import type { Route } from '../schema/route';
import { patient, quick, slow } from './lib/activities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import { Saga } from './lib/saga';
import { withSiteLock } from './lib/siteLock';

/**
 * Provision a site, as ops would by hand:
 *   validate → lock the site → place it → its Git repository (bare, with the post-receive hook,
 *   when the fleet has a git host) → database and user → shared files storage → app containers
 *   on every app server → cache → cron → routes on the proxies → health check through the proxy
 *   → record it active.
 * Every step is undone, in reverse order, if a later one fails: the site leaves nothing behind,
 * and the workflow fails with the first cause (and any undo that failed, for ops to finish).
 */
export async function provisionSite(input: ProvisionSiteInput): Promise<ProvisionSiteResult> {
  const { site, triggeredBy } = parseWorkflowInput(ProvisionSiteInput, input, 'provisionSite input');
  const op = startOperation({
    operation: 'provision',
    siteId: site.siteId,
    customerId: site.customerId,
    triggeredBy,
    summary: `provision ${site.siteId} (${site.plan}, ${site.profile}, ${site.appServers} app servers) for ${site.customerId}`,
  });

  return withSiteLock(site.siteId, 'provision', op.progress, async (lock) => {
    const before = lock.record;
    if (before.state === 'active' && JSON.stringify(before.spec) === JSON.stringify(site) && before.placement)
      return { siteId: site.siteId, state: 'active', placement: before.placement, alreadyProvisioned: true };
    if (!['new', 'deleted'].includes(before.state))
      throw ApplicationFailure.create({
        type: 'Conflict',
        message: `site ${site.siteId} is ${before.state}${before.state === 'active' ? ' with another spec' : ''}: not provisioning it again`,
        nonRetryable: true,
      });

    op.step('load profile');
    const profile = await quick.loadProfile({ name: site.profile });
    await lock.update({ state: 'provisioning', spec: site, customerId: site.customerId });

    const saga = new Saga();
    try {
      op.step('place');
      const placement = await quick.placeSite({ siteId: site.siteId, appServers: site.appServers });
      op.hosts([...placement.appHosts, placement.dbHost, placement.storageHost, ...placement.proxyHosts]);
      const hosts = new Map((await quick.listHosts()).map((h) => [h.name, h]));
      const { siteId } = site;

      let git: ProvisionSiteResult['git'];
      const gitHost = [...hosts.values()].find((h) => h.roles.includes('git'));
      if (patched('provision-git-repo') && gitHost) {
        op.step('git repository');
        op.hosts([
          ...placement.appHosts,
          placement.dbHost,
          placement.storageHost,
          ...placement.proxyHosts,
          gitHost.name,
        ]);
        // removes only a repository this site's provisioning created and nobody pushed to
        saga.add(`remove git repository ${site.git.repo}`, () =>
          quick.removeGitRepo({ repo: site.git.repo, createdBy: siteId }),
        );
        git = await quick.ensureGitRepo({ repo: site.git.repo, createdBy: siteId, hook: 'if-configured' });
        upsertMemo({ git });
      }

      op.step('database');
      saga.add('drop database and user', () => quick.dropSiteDatabase({ siteId, dbHost: placement.dbHost }));
      await quick.ensureSiteDatabase({ siteId, dbHost: placement.dbHost, clientHosts: placement.appHosts });

      op.step('files storage');
      saga.add('remove files storage', () =>
        quick.removeSiteFiles({ siteId, storageHost: placement.storageHost }),
      );
      await quick.ensureSiteFiles({ siteId, storageHost: placement.storageHost });
      await Promise.all(
        placement.appHosts.map(async (host) => {
          saga.add(`unmount files on ${host}`, () => quick.unmountSiteFiles({ siteId, host }));
          await quick.mountSiteFiles({ siteId, host, storageHost: placement.storageHost });
        }),
      );

      const containerHosts = [...new Set([...placement.appHosts, placement.cacheHost])];
      for (const host of containerHosts)
        saga.add(`remove containers on ${host}`, () => quick.removeSiteContainers({ siteId, host }));
      const container = (host: string, role: 'app' | 'cache' | 'cron') =>
        slow.ensureSiteContainer({ siteId, host, role, profile, site, placement, release: INITIAL_RELEASE });

      if (profile.containers.cache) {
        op.step('cache');
        await container(placement.cacheHost, 'cache');
      }
      op.step('app containers');
      await Promise.all(
        placement.appHosts.map(async (host) => {
          op.progress.hosts[host] = 'starting app';
          await container(host, 'app');
          op.progress.hosts[host] = 'app healthy';
        }),
      );
      if (profile.containers.cron) {
        op.step('cron');
        await container(placement.appHosts[0]!, 'cron');
      }

      op.step('routes');
      const route: Route = {
        siteId,
        domains: site.domains,
        backends: placement.appHosts.map((host) => ({
          host,
          address: hosts.get(host)!.address,
          port: placement.port,
          state: 'active' as const,
        })),
        mode: 'active',
      };
      for (const proxyHost of placement.proxyHosts) {
        saga.add(`remove route on ${proxyHost}`, () => quick.removeSiteRoute({ host: proxyHost, siteId }));
        await quick.ensureProxy({ host: proxyHost });
        await quick.putSiteRoute({ host: proxyHost, route });
      }

      op.step('health check through the proxy');
      for (const proxyHost of placement.proxyHosts)
        await patient.checkSiteHealth({
          proxyHost,
          domain: site.domains[0]!,
          path: profile.health.path,
          expectStatus: profile.health.expectStatus,
          expectText: profile.health.expectText,
        });

      await lock.update({ state: 'active', placement, release: INITIAL_RELEASE });
      op.finish();
      return { siteId, state: 'active', placement, alreadyProvisioned: false, git };
    } catch (err) {
      const failedStep = op.progress.step;
      op.step(`undoing (failed at ${failedStep})`);
      const undoFailures = await saga.compensate();
      // With every undo done the site is as it was; otherwise it needs ops, and says so.
      await lock.update({
        state: undoFailures.length ? 'failed' : before.state === 'deleted' ? 'deleted' : 'new',
      });
      throw ApplicationFailure.create({
        type: 'ProvisionFailed',
        message:
          `provisioning ${site.siteId} failed at "${failedStep}": ${rootMessage(err)}` +
          (undoFailures.length
            ? `; UNDO INCOMPLETE, ops must clean up: ${undoFailures.map((f) => `${f.step}: ${f.error}`).join('; ')}`
            : '; everything it had created was removed'),
        details: [{ failedStep, undoFailures }],
        cause: err instanceof Error ? err : undefined,
        nonRetryable: true,
      });
    }
  });
}
