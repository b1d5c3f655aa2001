import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import { rootMessage } from '../lib/input';
import { localStep1m } from '../lib/activities';
import { resolveCount } from '../../protocol/patchRoll';
import { Hosts } from '../../protocol/searchAttributes';
import { siteIdsIn, type Listing } from './listing';
import { planBatches, selectHosts } from './plan';
import type { RollState } from './state';

/**
 * The roll's first step (once: a continued run carries the plan): select the hosts, find the
 * sites on each (their containers' qm.site labels) and where those sites run (their records),
 * and plan the batches by plan.ts's rules. A host whose containers cannot be listed fails at
 * once (untouched). Returns the listing, for the first batch if it starts at once.
 */
export async function planRoll(roll: RollState): Promise<Listing> {
  const { cfg, progress } = roll;
  const inventory = await localStep1m.listHosts();
  const { hosts, unknown } = selectHosts(inventory, cfg.hosts);
  if (unknown.length)
    throw ApplicationFailure.create({
      type: 'InvalidInput',
      message: `invalid patchRoll input: hosts.names: not in the inventory: ${unknown.join(', ')}`,
      nonRetryable: true,
    });
  for (const h of hosts) progress.hosts[h] = { state: 'pending', batch: 0, sites: [] };
  upsertSearchAttributes([{ key: Hosts, value: hosts }]);
  progress.errorBudget.allowed = resolveCount(cfg.errorBudget, hosts.length, 'down');

  const found = await Promise.all(
    hosts.map((host) =>
      localStep1m.hostSites({ host }).then(
        (sites) => ({ host, sites }),
        (err: unknown) => {
          Object.assign(progress.hosts[host]!, {
            state: 'failed',
            reason: `could not list its containers: ${rootMessage(err)}`,
            leftAs: 'untouched',
          });
          return { host, sites: [] };
        },
      ),
    ),
  );
  const siteIds = siteIdsIn(found);
  const records = siteIds.length ? await localStep1m.readSiteRecords({ siteIds }) : {};
  const siteAppHosts: Record<string, string[]> = {};
  for (const [siteId, record] of Object.entries(records))
    if (record?.placement && record.state !== 'deleted') siteAppHosts[siteId] = record.placement.appHosts;
  const planned = hosts.filter((h) => progress.hosts[h]!.state === 'pending');
  progress.batches = planBatches(
    planned,
    siteAppHosts,
    resolveCount(cfg.batchSize, hosts.length, 'up'),
    cfg.canary,
  );
  progress.batches.forEach((b, i) => b.forEach((h) => (progress.hosts[h]!.batch = i + 1)));
  progress.canary.host = cfg.canary ? progress.batches[0]?.[0] : undefined;
  roll.refresh();
  return { seen: found, known: records };
}
