import type { Fleet } from '../../activities/fleet';
import { testbed } from '../../dev/fleet';
import type { SiteSpecInput } from '../../schema/site';
import { siteNames } from '../../schema/site';
import { openBed, type Bed } from './bed';
import { testSite } from './site';

/**
 * The PHP site's tests (profiles/test-php.yaml) run on the bed's hosts in the layout of a small
 * production fleet: two proxy hosts in front (host1, which also holds the databases, the files and
 * Git, and host4), two app servers (host2, host3) that hold nothing else. host4 is made for it
 * (`fleet.sh layout`); the bed's own inventory, which every other test uses, stays as it is.
 */
export const SITE_LAYOUT = [['proxy', 'db', 'storage', 'git'], ['app', 'cache'], ['app', 'cache'], ['proxy']];
export const APP_HOSTS = ['host2', 'host3'];

/** The bed in SITE_LAYOUT, the PHP site's image on its app servers (built once per machine: minutes the first time). */
export async function openSiteBed(): Promise<Bed> {
  const inventory = testbed.layout('site', SITE_LAYOUT);
  testbed.phpImage(APP_HOSTS);
  return openBed({ inventory });
}

/** A site spec on the PHP profile, on both app servers. */
export function phpSite(over: Partial<SiteSpecInput> = {}): SiteSpecInput {
  return testSite({ profile: 'test-php', appServers: 2, ...over });
}

/** SQL in the site's database as root on its DB host, outside our code (fleet.sh exec): rows of columns. */
export function siteSql(dbHost: string, siteId: string, sql: string): string[][] {
  return testbed
    .exec(dbHost, ['mariadb', '--batch', '--skip-column-names', siteNames(siteId).database, '-e', sql])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

export interface VisitRow {
  id: number;
  rid: string;
}

/** Every visit the site's database holds, by id. */
export function visitsOf(dbHost: string, siteId: string): VisitRow[] {
  return siteSql(dbHost, siteId, 'SELECT id, request_id FROM visits ORDER BY id').map(([id, rid]) => ({
    id: Number(id),
    rid: rid ?? '',
  }));
}

/** The proxy hosts' addresses (what visitors reach). */
export function proxyAddresses(fleet: Fleet): string[] {
  return fleet.hosts.filter((h) => h.roles.includes('proxy')).map((h) => h.address);
}
