import type { Client } from '@temporalio/client';
import type { Fleet } from '../../activities/fleet';
import { SiteSpec, siteNames, type Placement, type SiteRecord, type SiteState } from '../../schema/site';
import { siteWorkflowId } from '../../protocol/site';
import { eventually } from '../support/eventually';
import { testSite } from '../support/site';

/**
 * Small real sites without the full provisioning (for the nightly fan-out's tests and bench): a
 * real database with a table on a DB host, a real files directory on the storage host, and the
 * site's own workflow holding an active record (started with the state a continue-as-new carries;
 * another state if asked, for what the nightly skips).
 * No containers and no routes: a backup touches neither.
 */

export interface SmallSite {
  siteId: string;
  placement: Placement;
}

export async function createSmallSite(
  client: Client,
  fleet: Fleet,
  taskQueue: string,
  o: { siteId: string; dbHost: string; storageHost: string; rows?: number; state?: SiteState },
): Promise<SmallSite> {
  const { database, filesDir } = siteNames(o.siteId);
  const rows = o.rows ?? 50;
  await fleet.pool.exec(o.dbHost, ['mariadb', '--batch'], {
    stdin:
      `CREATE DATABASE IF NOT EXISTS \`${database}\`; USE \`${database}\`;` +
      ` CREATE TABLE IF NOT EXISTS node (id INT PRIMARY KEY, title VARCHAR(100));` +
      ` INSERT IGNORE INTO node SELECT seq, CONCAT('title ', seq) FROM seq_1_to_${rows};`,
  });
  await fleet.pool.exec(o.storageHost, [
    'sh',
    '-c',
    'mkdir -p "$1" && echo "$2" > "$1/index.txt"',
    'qm',
    filesDir,
    o.siteId,
  ]);
  const placement: Placement = {
    appHosts: [o.dbHost],
    dbHost: o.dbHost,
    storageHost: o.storageHost,
    proxyHosts: [o.storageHost],
    cacheHost: o.dbHost,
    port: 20000,
  };
  const record: SiteRecord = {
    siteId: o.siteId,
    customerId: 'cust-test',
    state: o.state ?? 'active',
    spec: SiteSpec.parse(testSite({ siteId: o.siteId })),
    placement,
    release: 'initial',
  };
  await client.workflow.start('site', {
    taskQueue,
    workflowId: siteWorkflowId(o.siteId),
    args: [{ siteId: o.siteId, carried: { record, queue: [] } }],
  });
  return { siteId: o.siteId, placement };
}

/** Everything createSmallSite made, and the site's backups. */
export async function removeSmallSite(client: Client, fleet: Fleet, s: SmallSite): Promise<void> {
  const { database, filesDir } = siteNames(s.siteId);
  await client.workflow
    .getHandle(siteWorkflowId(s.siteId))
    .terminate('test done')
    .catch(() => undefined);
  await fleet.pool.exec(s.placement.dbHost, ['mariadb', '--batch'], {
    stdin: `DROP DATABASE IF EXISTS \`${database}\`;`,
  });
  await fleet.pool.exec(s.placement.storageHost, [
    'sh',
    '-c',
    'rm -rf -- "$1" "$2"',
    'qm',
    filesDir,
    `/srv/qm/backups/${s.siteId}`,
  ]);
}

/** Wait until visibility lists every one of these sites as active (what the nightly fan-out reads). */
export async function waitUntilListedActive(
  client: Client,
  siteIds: string[],
  timeoutMs = 30_000,
): Promise<void> {
  const query =
    `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND State = 'active' AND ` +
    `SiteId IN (${siteIds.map((id) => `'${id}'`).join(', ')})`;
  await eventually(async () => (await client.workflow.count(query)).count >= siteIds.length, {
    what: `visibility to list ${siteIds.join(', ')} as active`,
    timeoutMs,
  });
}
