import type { Profile } from '../../schema/profile';
import type { Placement } from '../../schema/site';
import { health30s, long15m } from './activities';
import { allOrFirstFailure } from './parallel';

/**
 * The one definition of "the site is healthy": its profile's health request (path, status, text)
 * answered as expected, asked through the proxies with the site's first domain as Host, or straight
 * from a proxy host to one backend.
 */

/** What a healthy site answers, as its profile says: the path asked, the status and text expected. */
export const healthExpectation = (profile: Profile) => ({
  path: profile.health.path,
  expectStatus: profile.health.expectStatus,
  expectText: profile.health.expectText,
});

/** A site as the health checks see it. */
export interface SiteHealthTarget {
  placement: Pick<Placement, 'proxyHosts' | 'appHosts'>;
  /** The site's domains: the first is the Host asked for. */
  domains: string[];
  profile: Profile;
}

/** The activities a check runs with: health30s, or the patch roll's local equivalent. */
type HealthVia = Pick<typeof health30s, 'checkSiteHealth' | 'checkBackendHealth'>;

/**
 * The site answers as expected through every proxy; throws the first failure. Each request is one
 * activity, retried while the site comes up (health30s unless `via` says otherwise).
 *   every-server-at-once: one request per app server through each proxy (the proxies balance
 *     round robin, so every server answers one), all at once, waiting for all of them.
 *   each-proxy-in-turn: one request through each proxy, one proxy after the other.
 */
export async function siteHealthyThroughProxies(
  site: SiteHealthTarget,
  { mode, via = health30s }: { mode: 'every-server-at-once' | 'each-proxy-in-turn'; via?: HealthVia },
): Promise<void> {
  const check = (proxyHost: string) =>
    via.checkSiteHealth({ proxyHost, domain: site.domains[0]!, ...healthExpectation(site.profile) });
  if (mode === 'every-server-at-once')
    await allOrFirstFailure(
      site.placement.proxyHosts.flatMap((p) => site.placement.appHosts.map(() => check(p))),
    );
  else for (const proxyHost of site.placement.proxyHosts) await check(proxyHost);
}

/**
 * One backend (the site's container on `backend.host`, on `backend.port`) answers as expected
 * straight from every proxy host, one proxy after the other: one request each, retried while it
 * comes up (health30s unless `via` says otherwise).
 */
export async function backendHealthyFromProxies(
  site: SiteHealthTarget,
  backend: { host: string; port: number },
  { via = health30s }: { via?: HealthVia } = {},
): Promise<void> {
  for (const proxyHost of site.placement.proxyHosts)
    await via.checkBackendHealth({
      proxyHost,
      backendHost: backend.host,
      port: backend.port,
      domain: site.domains[0]!,
      ...healthExpectation(site.profile),
    });
}

/**
 * Wait (at most `timeoutMs`) until one backend answers as expected from every proxy host, all at
 * once: one waiting activity per proxy (long15m), for a container that has just started.
 */
export async function backendReadyFromProxies(
  site: SiteHealthTarget,
  backend: { host: string; port: number },
  timeoutMs: number,
): Promise<void> {
  await allOrFirstFailure(
    site.placement.proxyHosts.map((proxyHost) =>
      long15m.probeBackend({
        proxyHost,
        backendHost: backend.host,
        port: backend.port,
        domain: site.domains[0]!,
        ...healthExpectation(site.profile),
        timeoutMs,
      }),
    ),
  );
}
