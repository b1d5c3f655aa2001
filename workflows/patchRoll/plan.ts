import type { SiteAction } from '../../protocol/patchRoll';

/**
 * The site-aware decisions of a patch roll, pure (no workflow APIs, no I/O) so that every rule is
 * unit-tested: which hosts, in which batches, and what each of a host's sites needs while the host
 * is out (drain its backend, show the maintenance page, or hold the host back).
 */

export interface InventoryHostView {
  name: string;
  roles: string[];
  labels: Record<string, string>;
}

export interface Selector {
  names?: string[];
  roles?: string[];
  labels?: Record<string, string>;
}

/**
 * The hosts a selector picks, in inventory order: every given criterion must match (a host in
 * `names` AND with one of `roles` AND with all `labels`). A name not in the inventory is an error
 * (a typo must not silently shrink the roll).
 */
export function selectHosts(
  inventory: InventoryHostView[],
  s: Selector,
): { hosts: string[]; unknown: string[] } {
  const known = new Set(inventory.map((h) => h.name));
  const unknown = (s.names ?? []).filter((n) => !known.has(n));
  const hosts = inventory
    .filter((h) => !s.names || s.names.includes(h.name))
    .filter((h) => !s.roles || h.roles.some((r) => s.roles!.includes(r)))
    .filter((h) => !s.labels || Object.entries(s.labels).every(([k, v]) => h.labels[k] === v))
    .map((h) => h.name);
  return { hosts, unknown };
}

/**
 * Batches: at most `batchSize` hosts each, in the given order as far as the rules allow:
 * - with `canary`, the first batch is the first host alone;
 * - a site with k ≥ 2 app servers has at most k - 1 of them in any one batch, whatever the batch
 *   size, so at least one of its app servers serves while the batch is out. A host that would
 *   break this goes to the first later batch where it fits (a new one if none).
 * `siteAppHosts`: per site, all its app servers (those outside the roll count as serving).
 */
export function planBatches(
  hosts: string[],
  siteAppHosts: Record<string, string[]>,
  batchSize: number,
  canary: boolean,
): string[][] {
  const size = Math.max(1, Math.floor(batchSize));
  const sitesOf = new Map<string, string[]>();
  for (const [siteId, appHosts] of Object.entries(siteAppHosts))
    for (const h of new Set(appHosts)) sitesOf.set(h, [...(sitesOf.get(h) ?? []), siteId]);
  const servers = (siteId: string) => new Set(siteAppHosts[siteId]).size;

  const batches: string[][] = [];
  const fits = (batch: string[], host: string) =>
    batch.length < size &&
    (sitesOf.get(host) ?? []).every((siteId) => {
      const k = servers(siteId);
      if (k < 2) return true;
      const inBatch = batch.filter((h) => siteAppHosts[siteId]!.includes(h)).length;
      return inBatch + 1 <= k - 1;
    });

  let first = 0;
  for (const host of [...new Set(hosts)]) {
    if (canary && batches.length === 0) {
      batches.push([host]);
      first = 1;
      continue;
    }
    let placed = false;
    for (let i = first; i < batches.length && !placed; i++)
      if (fits(batches[i]!, host)) {
        batches[i]!.push(host);
        placed = true;
      }
    if (!placed) batches.push([host]);
  }
  return batches;
}

/** One backend of a site's route on one proxy host, as stored there. */
export interface RouteView {
  proxyHost: string;
  mode: 'active' | 'suspended' | 'maintenance';
  backends: { host: string; state: 'active' | 'drained' }[];
}

export interface SiteOnHost {
  siteId: string;
  /** Every app server of the site (its record's placement). */
  appHosts: string[];
  /** Its routes on the proxy hosts, as they stand (under the site's lock). */
  routes: RouteView[];
}

export interface HostDecision {
  host: string;
  /** Set when taking the host out would leave a site with no active app server: not patched. */
  heldBack?: string;
  actions: { siteId: string; action: SiteAction }[];
}

/**
 * What each host of a batch does for each of its sites, decided together (the hosts run at once):
 * - a site routed `active` whose app servers include the host: `maintenance` if the host is its
 *   only app server, else `drain` if, on every proxy, another of its backends stays active once
 *   this host and the batch's hosts decided before it are drained;
 * - if some site would be left with no active backend (another app server already drained: a host
 *   that failed earlier in the roll, or someone's drain), the host is held back, untouched, with
 *   the reason: taking it out would be an outage, for ops to decide;
 * - anything else (the site's cache or cron only, a suspended site, a route in maintenance
 *   already) is `none`: its route is left exactly as found.
 */
export function decideBatch(batch: string[], sitesByHost: Record<string, SiteOnHost[]>): HostDecision[] {
  const drained = new Map<string, Set<string>>(); // `${siteId} ${proxy}` -> hosts the batch drains
  const key = (siteId: string, proxy: string) => `${siteId} ${proxy}`;
  return batch.map((host) => {
    const actions: HostDecision['actions'] = [];
    let heldBack: string | undefined;
    for (const site of sitesByHost[host] ?? []) {
      const servesHere = site.appHosts.includes(host);
      const routed = site.routes.length > 0 && site.routes.every((r) => r.mode === 'active');
      if (!servesHere || !routed) {
        actions.push({ siteId: site.siteId, action: 'none' });
        continue;
      }
      if (new Set(site.appHosts).size === 1) {
        actions.push({ siteId: site.siteId, action: 'maintenance' });
        continue;
      }
      const starved = site.routes.find((r) => {
        const out = drained.get(key(site.siteId, r.proxyHost)) ?? new Set<string>();
        return !r.backends.some((b) => b.state === 'active' && b.host !== host && !out.has(b.host));
      });
      if (starved) {
        heldBack =
          `taking ${host} out would leave site ${site.siteId} with no active app server on ` +
          `${starved.proxyHost} (${describeBackends(starved, host)})`;
        break;
      }
      actions.push({ siteId: site.siteId, action: 'drain' });
    }
    if (heldBack) return { host, heldBack, actions: [] };
    for (const a of actions)
      if (a.action === 'drain')
        for (const r of sitesByHost[host]!.find((s) => s.siteId === a.siteId)!.routes) {
          const k = key(a.siteId, r.proxyHost);
          drained.set(k, new Set([...(drained.get(k) ?? []), host]));
        }
    return { host, actions };
  });
}

function describeBackends(route: RouteView, host: string): string {
  const others = route.backends.filter((b) => b.host !== host);
  return others.length ? others.map((b) => `${b.host} ${b.state}`).join(', ') : 'no other backend';
}
