import { ApplicationFailure, upsertMemo } from '@temporalio/workflow';
import { RepairSiteInput, type RepairSiteResult } from '../protocol/operations';
import type { SiteRecord } from '../schema/site';
import { step1m } from './lib/activities';
import { convergeSite, targetState } from './lib/convergeSite';
import { parseWorkflowInput } from './lib/input';
import { startOperation } from './lib/operation';
import { addressesOf } from './lib/routes';
import { withSiteLock } from './lib/siteLock';

/**
 * Put a site back as its record says, on every host that answers (ops, `qm repair`, the API, and
 * the fleet check by itself: after a failure that could not be undone, a host that came back, a
 * restart of the platform): under the site's lock, lib/convergeSite.ts does the work and reports
 * per host what it changed, what was already right and what it could not reach. Run on a site
 * that is in line, it changes nothing and says so.
 *
 * When nothing is left out of line, a failed site returns to the state it had before it failed
 * (active or suspended) and its failure is cleared; otherwise it stays failed, its failure listing
 * what is still out of line. An active or suspended site keeps its state either way.
 */
export async function repairSite(input: RepairSiteInput): Promise<RepairSiteResult> {
  const i = parseWorkflowInput(RepairSiteInput, input, 'repairSite input');
  const triggeredBy = i.triggeredBy ?? 'ui';
  const op = startOperation({
    operation: 'repair',
    siteId: i.siteId,
    triggeredBy,
    summary: `repair ${i.siteId} (${triggeredBy}${i.reason ? `: ${i.reason}` : ''})`,
  });

  return withSiteLock(i.siteId, 'repair', op.progress, async (lock) => {
    const { record } = lock;
    const neverActive =
      record.state === 'failed' && !['active', 'suspended'].includes(record.failure?.stateBefore ?? 'active');
    if (
      !['active', 'suspended', 'failed'].includes(record.state) ||
      !record.spec ||
      !record.placement ||
      neverActive
    )
      throw ApplicationFailure.create({
        type: 'Conflict',
        message:
          `site ${i.siteId} is ${record.state}` +
          (record.state === 'failed'
            ? `: its ${record.failure?.operation ?? 'provision'} did not finish (${record.failure?.cause ?? 'see its history'}), ` +
              'so there is no record of a site to return to: deprovision it (skipFinalBackup) to sweep what is left, then provision it again'
            : ': there is nothing to repair'),
        nonRetryable: true,
      });
    const placement = record.placement;
    op.hosts([
      ...placement.appHosts,
      placement.dbHost,
      placement.storageHost,
      ...placement.proxyHosts,
      placement.cacheHost,
    ]);
    op.step('load profile and inventory');
    const [profile, inventory] = await Promise.all([
      step1m.loadProfile({ name: record.spec.profile }),
      step1m.listHosts(),
    ]);

    const report = await convergeSite({
      record,
      profile,
      addresses: addressesOf(inventory),
      progress: op.progress,
      drainSeconds: i.drainSeconds,
      healthTimeoutMs: i.healthTimeoutSeconds * 1000,
      step: op.step,
    });

    op.step('record');
    let state: SiteRecord['state'] = record.state;
    if (report.outOfLine.length === 0) {
      if (record.state === 'failed' || record.failure) {
        state = targetState(record);
        await lock.update({ state, failure: null });
      }
    } else if (record.state === 'failed') {
      const { databaseSnapshot: _restoredOrNot, ...failure } = record.failure ?? {
        operation: 'unknown',
        workflowId: 'unknown',
        at: new Date().toISOString(),
        step: 'unknown',
        cause: 'the site was failed without a recorded cause',
        stateBefore: 'active' as const,
      };
      await lock.update({
        failure: {
          ...failure,
          ...(report.database && !report.database.restored
            ? { databaseSnapshot: report.database.snapshot }
            : {}),
          outOfLine: report.outOfLine,
        },
      });
    }
    for (const [host, h] of Object.entries(report.hosts))
      op.progress.hosts[host] = h.outOfLine.length
        ? `out of line: ${h.outOfLine.join('; ')}`
        : h.changed.length
          ? `repaired: ${h.changed.join('; ')}`
          : 'in line';
    const status: RepairSiteResult['status'] = report.outOfLine.length
      ? 'out-of-line'
      : report.changed
        ? 'repaired'
        : 'in-line';
    upsertMemo({ outcome: status });
    op.finish();
    return { siteId: i.siteId, status, stateBefore: record.state, state, triggeredBy, ...report };
  });
}
