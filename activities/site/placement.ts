import type { Host } from '../../schema/inventory';
import type { Placement } from '../../schema/site';
import { failure, FailureType } from '../errors';

/**
 * Where a site runs: a pure decision over what placeSite observed on the fleet (kept apart from
 * the observing, so that every rule here is unit-tested without a fleet).
 */

/** Host ports the site's app containers publish on (the cache publishes on port + CACHE_PORT_OFFSET). */
export const PORT_RANGE = { first: 20000, last: 29999 } as const;
export const CACHE_PORT_OFFSET = 10000;

export interface SiteContainerSeen {
  host: string;
  /** Its qm.role label (app, cache, cron). */
  role: string;
  /** The host ports it publishes (from its port bindings, so a stopped container counts too). */
  hostPorts: number[];
}

export interface PlacementFacts {
  siteId: string;
  database: string;
  appServers: number;
  /** The inventory, in its order. */
  hosts: readonly Host[];
  /** Per app host: how many containers carry a qm.site label (of any site). */
  siteContainers: Readonly<Record<string, number>>;
  /** Per app host: host ports in use by anything other than this site (containers, listeners). */
  usedPorts: Readonly<Record<string, readonly number[]>>;
  /** This site's containers already on the fleet. */
  existing: readonly SiteContainerSeen[];
  /** Per DB host: the names of the site databases on it. */
  siteDatabases: Readonly<Record<string, readonly string[]>>;
  /** Storage hosts that already hold the site's files directory. */
  storageWithFiles: readonly string[];
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The placement of a site. Stable: whatever a first (perhaps half-done) provision created is
 * where a second one lands: app hosts that already run the site's containers, the port its app
 * containers publish, the DB host that has its database, the storage host that has its files,
 * the host running its cache. The rest is chosen least loaded first, ties by name.
 */
export function decidePlacement(f: PlacementFacts): Placement {
  const withRole = (role: Host['roles'][number]) => f.hosts.filter((h) => h.roles.includes(role));
  const appRole = withRole('app');
  if (appRole.length < f.appServers)
    throw failure(
      FailureType.InvalidInput,
      `site ${f.siteId} needs ${f.appServers} app servers, but the fleet has ${appRole.length} app host(s)` +
        (appRole.length ? ` (${appRole.map((h) => h.name).join(', ')})` : ''),
      { siteId: f.siteId, appServers: f.appServers, appHosts: appRole.map((h) => h.name) },
    );
  const isApp = new Set(appRole.map((h) => h.name));
  const used = new Map(appRole.map((h) => [h.name, new Set(f.usedPorts[h.name] ?? [])]));
  const free = (host: string, port: number) => {
    const u = used.get(host)!;
    return !u.has(port) && !u.has(port + CACHE_PORT_OFFSET);
  };

  // --- app hosts: those already running the site, then the least loaded others
  const existingApp = [...new Set(f.existing.map((c) => c.host).filter((h) => isApp.has(h)))].sort(byName);
  const preferredPort = existingApp
    .flatMap((h) => f.existing.filter((c) => c.host === h && c.role === 'app').flatMap((c) => c.hostPorts))
    .find((p) => p >= PORT_RANGE.first && p <= PORT_RANGE.last);
  const candidates = appRole
    .map((h) => h.name)
    .filter((h) => !existingApp.includes(h))
    .sort(
      (a, b) =>
        // on a re-run, a host where the site's port is free first (so the port can stay)
        Number(preferredPort !== undefined && !free(a, preferredPort)) -
          Number(preferredPort !== undefined && !free(b, preferredPort)) ||
        (f.siteContainers[a] ?? 0) - (f.siteContainers[b] ?? 0) ||
        byName(a, b),
    );
  const appHosts = [
    ...existingApp,
    ...candidates.slice(0, Math.max(0, f.appServers - existingApp.length)),
  ].sort(byName);

  // --- the port: the one the site has if it is still free everywhere, else the lowest free one
  let port: number | undefined;
  if (preferredPort !== undefined && appHosts.every((h) => free(h, preferredPort))) port = preferredPort;
  for (let p = PORT_RANGE.first; port === undefined && p <= PORT_RANGE.last; p++)
    if (appHosts.every((h) => free(h, p))) port = p;
  if (port === undefined)
    throw failure(
      FailureType.Conflict,
      `no port in ${PORT_RANGE.first}-${PORT_RANGE.last} is free on all of ${appHosts.join(', ')}`,
      { siteId: f.siteId, appHosts },
    );

  // --- the DB host: the one with the site's database, else the one with the fewest site databases
  const dbRole = withRole('db').map((h) => h.name);
  if (!dbRole.length)
    throw failure(FailureType.InvalidInput, 'the fleet has no db host', { siteId: f.siteId });
  const holding = dbRole.filter((h) => (f.siteDatabases[h] ?? []).includes(f.database));
  if (holding.length > 1)
    throw failure(
      FailureType.Conflict,
      `database ${f.database} exists on several DB hosts (${holding.join(', ')}): resolve by hand before placing ${f.siteId}`,
      { siteId: f.siteId, database: f.database, hosts: holding },
    );
  const dbHost =
    holding[0] ??
    [...dbRole].sort(
      (a, b) => (f.siteDatabases[a] ?? []).length - (f.siteDatabases[b] ?? []).length || byName(a, b),
    )[0]!;

  // --- storage: the host with the site's files, else the first storage host
  const storageRole = withRole('storage').map((h) => h.name);
  if (!storageRole.length)
    throw failure(FailureType.InvalidInput, 'the fleet has no storage host', { siteId: f.siteId });
  const storageHost = storageRole.find((h) => f.storageWithFiles.includes(h)) ?? storageRole[0]!;

  const proxyHosts = withRole('proxy').map((h) => h.name);
  if (!proxyHosts.length)
    throw failure(FailureType.InvalidInput, 'the fleet has no proxy host', { siteId: f.siteId });

  // --- cache: where the site's cache runs already, else the first app host with the cache role
  const hasCache = (name: string) => f.hosts.find((h) => h.name === name)?.roles.includes('cache') ?? false;
  const cacheHost =
    f.existing.find((c) => c.role === 'cache' && appHosts.includes(c.host))?.host ??
    appHosts.find(hasCache) ??
    appHosts[0]!;

  return { appHosts, dbHost, storageHost, proxyHosts, cacheHost, port };
}
