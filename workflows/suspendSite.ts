import { ApplicationFailure } from '@temporalio/workflow';
import { ResumeSiteInput, SuspendSiteInput } from '../protocol/operations';
import type { Route } from '../schema/route';
import type { SiteRecord } from '../schema/site';
import { patient, quick } from './lib/activities';
import { parseWorkflowInput } from './lib/input';
import { startOperation } from './lib/operation';
import { withSiteLock } from './lib/siteLock';

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
    const hosts = new Map((await quick.listHosts()).map((h) => [h.name, h]));
    for (const host of placement.proxyHosts)
      await quick.putSiteRoute({ host, route: routeFor(record, hosts, 'suspended') });

    op.step('stop containers');
    const containerHosts = [...new Set([...placement.appHosts, placement.cacheHost])];
    await Promise.all(containerHosts.map((host) => quick.stopSiteContainers({ siteId, host })));

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
    await Promise.all(containerHosts.map((host) => quick.startSiteContainers({ siteId, host })));

    op.step('routes');
    const hosts = new Map((await quick.listHosts()).map((h) => [h.name, h]));
    for (const host of placement.proxyHosts)
      await quick.putSiteRoute({ host, route: routeFor(record, hosts, 'active') });

    op.step('health check through the proxy');
    const profile = await quick.loadProfile({ name: record.spec!.profile });
    for (const proxyHost of placement.proxyHosts)
      await patient.checkSiteHealth({
        proxyHost,
        domain: record.spec!.domains[0]!,
        path: profile.health.path,
        expectStatus: profile.health.expectStatus,
        expectText: profile.health.expectText,
      });

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

/** The site's route as the record describes it, in the given mode. */
export function routeFor(
  record: SiteRecord,
  hosts: Map<string, { address: string }>,
  mode: Route['mode'],
): Route {
  const placement = record.placement!;
  return {
    siteId: record.siteId,
    domains: record.spec!.domains,
    backends: placement.appHosts.map((host) => ({
      host,
      address: hosts.get(host)!.address,
      port: placement.port,
      state: 'active' as const,
    })),
    mode,
  };
}
