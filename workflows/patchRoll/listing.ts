import type { Route } from '../../schema/route';
import type { SiteRecord } from '../../schema/site';
import { localStep1m } from '../lib/activities';
import type { HeldSiteLocks } from '../lib/siteLock';
import type { LockedSite } from './host';

export type SiteContainersOnHost = Awaited<ReturnType<typeof localStep1m.hostSites>>[number];

/** Which sites have containers on each host, and the records of those sites (before the locks). */
export interface Listing {
  seen: { host: string; sites: SiteContainersOnHost[] }[];
  known: Record<string, SiteRecord | null>;
  /** The sites whose locks were held while this was listed (kept from the last batch), and their routes then. */
  held?: { siteIds: string[]; routes: Map<string, Map<string, Route>> };
}

/** What a batch knows of its hosts' sites once it holds their locks. */
export interface SitesUnderLocks {
  /** By host, the locked sites with containers on it. */
  byHost: Map<string, Map<string, LockedSite>>;
  /** By host, the sites that appeared on it after the first look (not locked). */
  unlocked: Map<string, string[]>;
}

/** The ids of the sites seen, once each, sorted (the order locks are asked for). */
export function siteIdsIn(seen: Listing['seen']): string[] {
  return [...new Set(seen.flatMap((s) => s.sites.map((x) => x.siteId)))].sort();
}

/** A site's stored route on each of its proxy hosts, read at once (those that have one). */
async function readRoutesAtOnce(r: SiteRecord): Promise<Map<string, Route>> {
  const m = new Map<string, Route>();
  const found = await Promise.all(
    r.placement!.proxyHosts.map((proxyHost) =>
      localStep1m.readSiteRoute({ host: proxyHost, siteId: r.siteId }),
    ),
  );
  r.placement!.proxyHosts.forEach((proxyHost, i) => found[i] && m.set(proxyHost, found[i]));
  return m;
}

/** Sites whose routes a batch reads and changes: active, placed, with a spec. */
const routable = (r: SiteRecord) => r.state === 'active' && !!r.placement && !!r.spec;

/** Which sites have containers on the hosts, and their records. */
export async function listSites(hosts: string[]): Promise<Listing> {
  const seen = await Promise.all(
    hosts.map(async (host) => ({ host, sites: await localStep1m.hostSites({ host }) })),
  );
  const siteIds = siteIdsIn(seen);
  const known = siteIds.length ? await localStep1m.readSiteRecords({ siteIds }) : {};
  return { seen, known };
}

/**
 * listSites while holding locks: the records of held sites are the locks' (no query), and the
 * routes of `wanted` are read beside the hosts' listing. If the next batch keeps every lock it
 * needs, this listing was made under them, and nothing is read again (sitesUnderLocks).
 */
export async function listSitesHolding(
  hosts: string[],
  held: HeldSiteLocks,
  wanted: string[],
): Promise<Listing> {
  const records = new Map(held.locks.map((l) => [l.siteId, l.record]));
  const routes = new Map<string, Map<string, Route>>();
  const [seen] = await Promise.all([
    Promise.all(hosts.map(async (host) => ({ host, sites: await localStep1m.hostSites({ host }) }))),
    Promise.all(
      wanted
        .map((id) => records.get(id)!)
        .filter(routable)
        .map(async (r) => routes.set(r.siteId, await readRoutesAtOnce(r))),
    ),
  ]);
  const siteIds = siteIdsIn(seen);
  const others = siteIds.filter((id) => !records.has(id));
  const known: Listing['known'] = others.length ? await localStep1m.readSiteRecords({ siteIds: others }) : {};
  for (const id of siteIds) if (records.has(id)) known[id] = records.get(id)!;
  return { seen, known, held: { siteIds: wanted, routes } };
}

/**
 * The hosts' sites as the batch holds them: their records (the locks'), their routes, and the
 * hosts listed again (a site that appeared since `ids` were listed is not locked: it is noted in
 * `unlocked`). `listedUnder`: a listing made while every one of these locks was held, whose
 * listing and routes are used instead of reading them again.
 */
export async function sitesUnderLocks(
  hosts: string[],
  ids: string[],
  locks: HeldSiteLocks,
  listedUnder: Listing | undefined,
): Promise<SitesUnderLocks> {
  const records = new Map<string, SiteRecord>(locks.locks.map((l) => [l.siteId, l.record]));
  const routes = new Map<string, Map<string, Route>>();
  const toRead = listedUnder ? [] : [...records.values()].filter(routable);
  if (listedUnder) for (const [id, m] of listedUnder.held!.routes) if (records.has(id)) routes.set(id, m);
  const readRoutes = Promise.all(toRead.map(async (r) => routes.set(r.siteId, await readRoutesAtOnce(r))));
  const byHost = new Map<string, Map<string, LockedSite>>();
  const unlocked = new Map<string, string[]>();
  let again: SiteContainersOnHost[][];
  if (listedUnder) again = hosts.map((h) => listedUnder.seen.find((x) => x.host === h)?.sites ?? []);
  else
    [again] = await Promise.all([
      Promise.all(hosts.map((host) => localStep1m.hostSites({ host }))),
      readRoutes,
    ]);
  for (const [i, host] of hosts.entries()) {
    const mine = new Map<string, LockedSite>();
    for (const s of again[i]!) {
      const record = records.get(s.siteId);
      if (!record) {
        // new since the first look: not locked, so the host must not be taken out
        if (!ids.includes(s.siteId)) unlocked.set(host, [...(unlocked.get(host) ?? []), s.siteId]);
        continue; // containers with no site workflow: not the platform's, left alone
      }
      mine.set(s.siteId, {
        siteId: s.siteId,
        record,
        routes: routes.get(s.siteId) ?? new Map(),
        ranHere: s.containers.some((c) => c.state === 'running'),
        rolesHere: s.roles,
      });
    }
    byHost.set(host, mine);
  }
  return { byHost, unlocked };
}
