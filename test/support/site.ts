import type { Fleet } from '../../activities/fleet';
import { probeThroughProxy, type ProbeResult } from '../../activities/proxy/probe';
import type { SiteSpecInput } from '../../schema/site';
import { siteNames } from '../../schema/site';

/** A site spec on the test profile, with a unique id per call. */
export function testSite(over: Partial<SiteSpecInput> = {}): SiteSpecInput {
  const siteId = over.siteId ?? `t-${Math.random().toString(36).slice(2, 8)}`;
  return {
    siteId,
    customerId: 'cust-test',
    plan: 'starter',
    profile: 'test-busybox',
    domains: [`${siteId}.sites.example`],
    git: { repo: `customers/${siteId}.git`, branch: 'main' },
    appServers: 2,
    ...over,
  };
}

/** GET through the first proxy host with the site's domain as Host. */
export function fetchSite(fleet: Fleet, domain: string, path = '/'): Promise<ProbeResult> {
  const proxy = fleet.hosts.find((h) => h.roles.includes('proxy'))!;
  return probeThroughProxy({ address: proxy.address, domain, path, timeoutMs: 5000 });
}

/** The site's containers on every host: `host:name (state)`. */
export async function siteContainers(fleet: Fleet, siteId: string): Promise<string[]> {
  const found: string[] = [];
  for (const h of fleet.hosts) {
    const list = await fleet.docker
      .engine(h.name)
      .listContainers({ all: true, filters: JSON.stringify({ label: [`qm.site=${siteId}`] }) });
    for (const c of list) found.push(`${h.name}:${(c.Names[0] ?? '').replace(/^\//, '')} (${c.State})`);
  }
  return found.sort();
}

/**
 * Everything of a site still on the fleet, checked directly on the hosts (not through the code
 * under test): containers, database, database user, files, mounts, secrets, proxy routes.
 */
export async function siteLeftovers(fleet: Fleet, siteId: string): Promise<string[]> {
  const names = siteNames(siteId);
  const left: string[] = (await siteContainers(fleet, siteId)).map((c) => `container ${c}`);
  for (const h of fleet.hosts) {
    const sh = (script: string, ...args: string[]) =>
      fleet.pool.exec(h.name, ['sh', '-c', script, 'qm', ...args], { check: false });
    const db = await fleet.pool.exec(h.name, [
      'mariadb',
      '--batch',
      '--skip-column-names',
      '-e',
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='${names.database}' UNION ALL SELECT CONCAT('user ', User) FROM mysql.user WHERE User='${names.dbUser}'`,
    ]);
    for (const line of db.stdout.split('\n').filter(Boolean)) left.push(`${h.name}: database ${line}`);
    for (const path of [
      names.filesDir,
      `/srv/qm/secrets/${siteId}`,
      `/srv/qm/sites/${siteId}`,
      `/srv/qm/proxy/sites/${siteId}.conf`,
    ])
      if ((await sh('test -e "$1"', path)).code === 0) left.push(`${h.name}: ${path}`);
    if ((await sh('grep -q " $1 " /proc/mounts', names.mountDir)).code === 0)
      left.push(`${h.name}: mount ${names.mountDir}`);
  }
  return left;
}
