import {
  ApplicationFailure,
  CancellationScope,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { INITIAL_RELEASE } from '../protocol/ids';
import { RollbackSiteInput, type RollbackSiteResult } from '../protocol/operations';
import { Release } from '../protocol/searchAttributes';
import { requireActive } from './deployRelease';
import { quick } from './lib/activities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import {
  converge,
  healthThroughProxies,
  observeServing,
  short,
  type SwitchContext,
  type SwitchState,
} from './lib/release';
import { withSiteLock } from './lib/siteLock';

/**
 * Put a site back on a release it ran before, in seconds: the release's folder is still on every
 * app server (no fetch), so this is only the zero-downtime switch (lib/release.ts), then health
 * through every proxy and the record. No postDeploy hooks and no database change: a release whose
 * migrations must be undone needs the deploy's snapshot restored, which is a decision for ops.
 * If the switch fails, every server goes back to the release it was on.
 */
export async function rollbackSite(input: RollbackSiteInput): Promise<RollbackSiteResult> {
  const i = parseWorkflowInput(RollbackSiteInput, input, 'rollbackSite input');
  const triggeredBy = i.triggeredBy ?? 'ui';
  const op = startOperation({
    operation: 'rollback',
    siteId: i.siteId,
    triggeredBy,
    summary: `roll ${i.siteId} back to ${short(i.release)} (${triggeredBy}${i.reason ? `: ${i.reason}` : ''})`,
  });
  upsertMemo({ trigger: { kind: 'rollback', reason: i.reason } });
  upsertSearchAttributes([{ key: Release, value: i.release }]);

  return withSiteLock(i.siteId, 'rollback', op.progress, async (lock) => {
    const record = requireActive(lock.record);
    const from = record.release ?? INITIAL_RELEASE;
    const base = { siteId: i.siteId, release: i.release, previous: from, triggeredBy };
    if (from === i.release) {
      op.finish();
      return { ...base, status: 'unchanged' };
    }
    const placement = record.placement!;
    op.step('check the release is kept');
    if (i.release !== INITIAL_RELEASE)
      for (const host of placement.appHosts) {
        const kept = await quick.listReleases({ siteId: i.siteId, host });
        if (!kept.some((r) => r.commit === i.release))
          throw ApplicationFailure.create({
            type: 'Conflict',
            message: `release ${short(i.release)} of ${i.siteId} is no longer kept on ${host} (kept: ${
              kept.map((r) => short(r.commit)).join(', ') || 'none'
            }): deploy it instead`,
            nonRetryable: true,
          });
      }

    const profile = await quick.loadProfile({ name: record.spec!.profile });
    const inventory = await quick.listHosts();
    op.hosts([...placement.appHosts, ...placement.proxyHosts]);
    const ctx: SwitchContext = {
      siteId: i.siteId,
      spec: record.spec!,
      placement,
      profile,
      addresses: Object.fromEntries(inventory.map((h) => [h.name, h.address])),
      progress: op.progress,
      drainSeconds: i.drainSeconds,
      healthTimeoutMs: i.healthTimeoutSeconds * 1000,
      workMs: {},
    };
    const state: SwitchState = { serving: await observeServing(ctx), live: from };
    if (state.serving !== 'live') state.live = 'mixed';

    try {
      op.step('switch app servers');
      // the health checks once the live containers serve it: beside the standbys' removal (or
      // after it, in the order recorded before the release-switch-parallel patch)
      await converge(ctx, state, i.release, async () => {
        op.step('health through the proxy');
        await healthThroughProxies(ctx);
      });
    } catch (err) {
      const failedStep = op.progress.step;
      op.step(`switching back to ${short(from)} (failed at ${failedStep})`);
      let problem: string | undefined;
      await CancellationScope.nonCancellable(async () => {
        try {
          await converge(ctx, state, from);
        } catch (e) {
          problem = rootMessage(e);
        }
      });
      if (problem) await lock.update({ state: 'failed' });
      throw ApplicationFailure.create({
        type: 'RollbackFailed',
        message:
          `rolling ${i.siteId} back to ${short(i.release)} failed at "${failedStep}": ${rootMessage(err)}` +
          (problem
            ? `; SWITCH BACK INCOMPLETE, ops must finish it: ${problem}`
            : `; every app server is still on ${short(from)}`),
        details: [{ failedStep, problem }],
        cause: err instanceof Error ? err : undefined,
        nonRetryable: true,
      });
    }
    await lock.update({ release: i.release });
    if (i.release !== INITIAL_RELEASE)
      await Promise.all(
        placement.appHosts.map((host) =>
          quick.pruneReleases({ siteId: i.siteId, host, live: i.release, keep: 20, protect: [from] }),
        ),
      );
    op.finish();
    return { ...base, status: 'rolled-back' };
  });
}
