import { ApplicationFailure } from '@temporalio/workflow';
import { ResumeSiteInput, SuspendSiteInput } from '../protocol/operations';
import type { SiteRecord } from '../schema/site';
import { long15m, step1m } from './lib/activities';
import { siteHealthyThroughProxies } from './lib/health';
import { parseWorkflowInput } from './lib/input';
import { startOperation } from './lib/operation';
import { addressesOf, siteRoute } from './lib/routes';
import { withSiteLock } from './lib/siteLock';
import { onEveryHost } from './lib/parallel';

/**
 * Suspend a site (an unpaid invoice): the proxies serve the "suspended" page, then its containers
 * stop. Its data (database, files) stays exactly as it is. Run twice, the second does nothing.
 */
export async function suspendSite(input: SuspendSiteInput): Promise<{ siteId: string; state: 'suspended' }> {
  const { siteId, reason, triggeredBy } = parseWorkflowInput(SuspendSiteInput, input, 'suspendSite input');
  const op = startOperation({
    operation: 'suspend',
    siteId,
    triggeredBy,
    summary: `suspend ${siteId}${reason ? `: ${reason}` : ''}`,
  });
  return withSiteLock(siteId, 'suspend', op.progress, async (lock) => {
    const { record } = lock;
    if (record.state === 'suspended') return { siteId, state: 'suspended' };
    const placement = requirePlacement(record, ['active']);

    op.step('suspended page');
    const addresses = addressesOf(await step1m.listHosts());
    for (const host of placement.proxyHosts)
      await step1m.putSiteRoute({
        host,
        route: siteRoute(record.spec!, placement, addresses, { mode: 'suspended' }),
      });

    op.step('stop containers');
    const containerHosts = [...new Set([...placement.appHosts, placement.cacheHost])];
    // long15m: a stop waits for each container to end, heartbeating; a dead worker is noticed in 15 s
    await onEveryHost(containerHosts, (host) => long15m.stopSiteContainers({ siteId, host }));

    await lock.update({ state: 'suspended' });
    op.finish();
    return { siteId, state: 'suspended' };
  });
}

/**
 * Resume a suspended site: its containers start again (the same ones, same data), every app
 * server must be healthy, then the proxies route to it again and it must answer through them.
 */
export async function resumeSite(input: ResumeSiteInput): Promise<{ siteId: string; state: 'active' }> {
  const { siteId, triggeredBy } = parseWorkflowInput(ResumeSiteInput, input, 'resumeSite input');
  const op = startOperation({ operation: 'resume', siteId, triggeredBy, summary: `resume ${siteId}` });
  return withSiteLock(siteId, 'resume', op.progress, async (lock) => {
    const { record } = lock;
    if (record.state === 'active') return { siteId, state: 'active' };
    const placement = requirePlacement(record, ['suspended']);

    op.step('start containers');
    const containerHosts = [...new Set([placement.cacheHost, ...placement.appHosts])];
    // long15m: starts and health waits, heartbeating; a dead worker is noticed in 15 s, not after a minute
    await onEveryHost(containerHosts, (host) => long15m.startSiteContainers({ siteId, host }));

    op.step('routes');
    const addresses = addressesOf(await step1m.listHosts());
    for (const host of placement.proxyHosts)
      await step1m.putSiteRoute({ host, route: siteRoute(record.spec!, placement, addresses) });

    op.step('health check through the proxy');
    const profile = await step1m.loadProfile({ name: record.spec!.profile });
    await siteHealthyThroughProxies(
      { placement, domains: record.spec!.domains, profile },
      { mode: 'each-proxy-in-turn' },
    );

    await lock.update({ state: 'active' });
    op.finish();
    return { siteId, state: 'active' };
  });
}

function requirePlacement(record: SiteRecord, allowed: string[]) {
  if (!allowed.includes(record.state) || !record.placement || !record.spec)
    throw ApplicationFailure.create({
      type: 'Conflict',
      message: `site ${record.siteId} is ${record.state}; this needs it ${allowed.join(' or ')}`,
      nonRetryable: true,
    });
  return record.placement;
}
