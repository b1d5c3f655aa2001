import { ApplicationFailure, upsertMemo, workflowInfo } from '@temporalio/workflow';
import { ProvisionSiteInput, type ProvisionSiteResult } from '../protocol/operations';
import type { Placement } from '../schema/site';
import { long15m, step1m } from './lib/activities';
import { siteHealthyThroughProxies } from './lib/health';
import { INITIAL_RELEASE } from '../protocol/ids';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import { addressesOf, siteRoute } from './lib/routes';
import { Saga } from './lib/saga';
import { withSiteLock } from './lib/siteLock';
import { HostStepFailed, onEveryHost } from './lib/parallel';

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
    const profile = await step1m.loadProfile({ name: site.profile });
    await lock.update({ state: 'provisioning', spec: site, customerId: site.customerId });

    const saga = new Saga();
    /** Where the site was placed, once it was: a failed undo's leftovers are there. */
    let placed: Placement | undefined;
    try {
      op.step('place');
      const placement = await step1m.placeSite({ siteId: site.siteId, appServers: site.appServers });
      placed = placement;
      op.hosts([...placement.appHosts, placement.dbHost, placement.storageHost, ...placement.proxyHosts]);
      const inventory = await step1m.listHosts();
      const { siteId } = site;

      let git: ProvisionSiteResult['git'];
      const gitHost = inventory.find((h) => h.roles.includes('git'));
      if (gitHost) {
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
          step1m.removeGitRepo({ repo: site.git.repo, createdBy: siteId }),
        );
        git = await step1m.ensureGitRepo({ repo: site.git.repo, createdBy: siteId, hook: 'if-configured' });
        upsertMemo({ git });
      }

      op.step('database');
      saga.add('drop database and user', () => step1m.dropSiteDatabase({ siteId, dbHost: placement.dbHost }));
      await step1m.ensureSiteDatabase({ siteId, dbHost: placement.dbHost, clientHosts: placement.appHosts });

      op.step('files storage');
      saga.add('remove files storage', () =>
        step1m.removeSiteFiles({ siteId, storageHost: placement.storageHost }),
      );
      await step1m.ensureSiteFiles({ siteId, storageHost: placement.storageHost });
      // every host's step runs to its end before a failure is handled: an undo must not race it
      await onEveryHost(placement.appHosts, async (host) => {
        saga.add(`unmount files on ${host}`, () => step1m.unmountSiteFiles({ siteId, host }));
        await step1m.mountSiteFiles({ siteId, host, storageHost: placement.storageHost });
      });

      const containerHosts = [...new Set([...placement.appHosts, placement.cacheHost])];
      for (const host of containerHosts)
        saga.add(`remove containers on ${host}`, () => step1m.removeSiteContainers({ siteId, host }));
      const container = (host: string, role: 'app' | 'cache' | 'cron') =>
        long15m.ensureSiteContainer({
          siteId,
          host,
          role,
          profile,
          site,
          placement,
          release: INITIAL_RELEASE,
        });

      if (profile.containers.cache) {
        op.step('cache');
        await container(placement.cacheHost, 'cache');
      }
      op.step('app containers');
      await onEveryHost(placement.appHosts, async (host) => {
        op.progress.hosts[host] = 'starting app';
        await container(host, 'app');
        op.progress.hosts[host] = 'app healthy';
      });
      if (profile.containers.cron) {
        op.step('cron');
        await container(placement.appHosts[0]!, 'cron');
      }

      op.step('routes');
      const route = siteRoute(site, placement, addressesOf(inventory));
      for (const proxyHost of placement.proxyHosts) {
        saga.add(`remove route on ${proxyHost}`, () => step1m.removeSiteRoute({ host: proxyHost, siteId }));
        await step1m.ensureProxy({ host: proxyHost });
        await step1m.putSiteRoute({ host: proxyHost, route });
      }

      op.step('health check through the proxy');
      await siteHealthyThroughProxies(
        { placement, domains: site.domains, profile },
        { mode: 'each-proxy-in-turn' },
      );

      await lock.update({ state: 'active', placement, release: INITIAL_RELEASE });
      op.finish();
      return { siteId, state: 'active', placement, alreadyProvisioned: false, git };
    } catch (err) {
      const failedStep = op.progress.step;
      op.step(`undoing (failed at ${failedStep})`);
      const undoFailures = await saga.compensate();
      // With every undo done the site is as it was; otherwise it needs ops, and says so (its
      // failure lists what the undo left behind, its placement where: a deprovision sweeps it).
      const stateBefore = before.state === 'deleted' ? 'deleted' : 'new';
      await lock.update(
        undoFailures.length
          ? {
              state: 'failed',
              ...(placed ? { placement: placed } : {}),
              failure: {
                operation: 'provision',
                workflowId: workflowInfo().workflowId,
                at: new Date().toISOString(),
                step: failedStep,
                ...(err instanceof HostStepFailed ? { host: err.host } : {}),
                cause: rootMessage(err),
                outOfLine: undoFailures.map((f) => `${f.step}: ${f.error}`),
                stateBefore,
              },
            }
          : { state: stateBefore },
      );
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
