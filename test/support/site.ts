import { verifyDatabaseName } from '../../activities/backup/layout';
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
 * under test): containers, database (and its backups' scratch database), database user, files, mounts, secrets, proxy routes, release
 * folders. (Not the site's Git repository: deprovisioning keeps it; see gitRepoOnHost.)
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
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('${names.database}', '${verifyDatabaseName(siteId)}') UNION ALL SELECT CONCAT('user ', User) FROM mysql.user WHERE User='${names.dbUser}'`,
    ]);
    for (const line of db.stdout.split('\n').filter(Boolean)) left.push(`${h.name}: database ${line}`);
    for (const path of [
      names.filesDir,
      `/srv/qm/secrets/${siteId}`,
      `/srv/qm/sites/${siteId}`,
      `/srv/qm/proxy/sites/${siteId}.conf`,
      `/srv/qm/releases/${siteId}`,
    ])
      if ((await sh('test -e "$1"', path)).code === 0) left.push(`${h.name}: ${path}`);
    if ((await sh('grep -q " $1 " /proc/mounts', names.mountDir)).code === 0)
      left.push(`${h.name}: mount ${names.mountDir}`);
  }
  return left;
}

/**
 * The repository as the Git host has it, read there directly: absent, or bare with its
 * `qm.createdBy`, its post-receive link and whether it holds any ref.
 */
export async function gitRepoOnHost(
  fleet: Fleet,
  repo: string,
): Promise<{ exists: false } | { exists: true; createdBy: string; hookLink: string; hasRefs: boolean }> {
  const gitHost = fleet.hosts.find((h) => h.roles.includes('git'))!.name;
  const path = `/srv/git/${repo}`;
  const r = await fleet.pool.exec(
    gitHost,
    [
      'sh',
      '-c',
      '[ -f "$1/HEAD" ] || { echo absent; exit 0; }; git -C "$1" config --get qm.createdBy || echo; readlink "$1/hooks/post-receive" || echo; git -C "$1" for-each-ref --count=1 | wc -l',
      'qm',
      path,
    ],
    { check: false },
  );
  const lines = r.stdout.split('\n');
  if (lines[0] === 'absent') return { exists: false };
  return { exists: true, createdBy: lines[0]!, hookLink: lines[1]!, hasRefs: lines[2]!.trim() !== '0' };
}

/** Remove a test's repository from the Git host (deprovisioning keeps repositories). */
export async function removeGitRepoOnHost(fleet: Fleet, repo: string): Promise<void> {
  const gitHost = fleet.hosts.find((h) => h.roles.includes('git'))!.name;
  await fleet.pool.exec(gitHost, ['rm', '-rf', '--', `/srv/git/${repo}`]);
}
