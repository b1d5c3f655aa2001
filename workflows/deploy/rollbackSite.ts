import {
  ApplicationFailure,
  CancellationScope,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SiteRecord } from '../../schema/site';
import { step1m } from '../lib/activities';
import { INITIAL_RELEASE } from '../../protocol/ids';
import { parseWorkflowInput, rootMessage } from '../lib/input';
import { startOperation } from '../lib/operation';
import { failAndConverge, targetState } from '../lib/convergeSite';
import { HostStepFailed } from '../lib/parallel';
import { addressesOf } from '../lib/routes';
import { withSiteLock, type SiteLock } from '../lib/siteLock';
import { Release } from '../../protocol/searchAttributes';
import { RollbackSiteInput, type RollbackSiteResult } from '../../protocol/operations';
import {
  converge,
  healthThroughProxies,
  observeServing,
  requireActive,
  short,
  switchStateFrom,
  type SwitchContext,
  type SwitchState,
} from './switch';

/**
 * Put a site back on a release it ran before, in seconds: the release's folder is still on every
 * app server (no fetch), so this is only the zero-downtime switch (switch.ts), then health
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
    const record =
      lock.record.state === 'failed' ? requireRollbackable(lock.record) : requireActive(lock.record);
    const failed = record.state === 'failed';
    const from = record.release ?? INITIAL_RELEASE;
    const base = { siteId: i.siteId, release: i.release, previous: from, triggeredBy };
    if (from === i.release && !failed) {
      op.finish();
      return { ...base, status: 'unchanged' };
    }
    const placement = record.placement!;
    op.step('check the release is kept');
    if (i.release !== INITIAL_RELEASE) await requireKept(i.siteId, i.release, placement.appHosts);

    const profile = await step1m.loadProfile({ name: record.spec!.profile });
    const inventory = await step1m.listHosts();
    op.hosts([...placement.appHosts, ...placement.proxyHosts]);
    const ctx: SwitchContext = {
      siteId: i.siteId,
      spec: record.spec!,
      placement,
      profile,
      addresses: addressesOf(inventory),
      progress: op.progress,
      drainSeconds: i.drainSeconds,
      healthTimeoutMs: i.healthTimeoutSeconds * 1000,
    };
    // a failed site's live containers may run anything: the switch then starts from standbys
    const state = switchStateFrom(await observeServing(ctx), failed ? 'mixed' : from);

    await switchOrSwitchBack(ctx, state, { target: i.release, from }, lock, op);
    // every server switched and answered through every proxy: a failed site is back in service
    await lock.update(
      failed ? { release: i.release, state: targetState(record), failure: null } : { release: i.release },
    );
    if (i.release !== INITIAL_RELEASE)
      await Promise.all(
        placement.appHosts.map((host) =>
          step1m.pruneReleases({ siteId: i.siteId, host, live: i.release, keep: 20, protect: [from] }),
        ),
      );
    op.finish();
    return { ...base, status: 'rolled-back' };
  });
}

/**
 * A failed site may be rolled back when it is placed and its database is not waiting for a
 * snapshot (a deploy's whose hooks ran: a repair restores it, behind the maintenance page);
 * else Conflict.
 */
function requireRollbackable(record: SiteRecord): SiteRecord {
  const why =
    !record.spec || !record.placement
      ? 'was never placed'
      : record.failure?.databaseSnapshot
        ? `must have its database back on snapshot ${record.failure.databaseSnapshot} first: repair it (qm repair ${record.siteId})`
        : undefined;
  if (why)
    throw ApplicationFailure.create({
      type: 'Conflict',
      message: `site ${record.siteId} is failed and ${why}`,
      nonRetryable: true,
    });
  return record;
}

/** Conflict unless the release's folder is still kept on every app host (asked host by host). */
async function requireKept(siteId: string, release: string, appHosts: string[]): Promise<void> {
  for (const host of appHosts) {
    const kept = await step1m.listReleases({ siteId, host });
    if (!kept.some((r) => r.commit === release))
      throw ApplicationFailure.create({
        type: 'Conflict',
        message: `release ${short(release)} of ${siteId} is no longer kept on ${host} (kept: ${
          kept.map((r) => short(r.commit)).join(', ') || 'none'
        }): deploy it instead`,
        nonRetryable: true,
      });
  }
}

/**
 * The switch onto `target`, with the health checks once the live containers serve it (beside the
 * standbys' removal). On failure, every server back on `from`, and the workflow fails with the
 * cause, saying whether the switch back was complete.
 */
async function switchOrSwitchBack(
  ctx: SwitchContext,
  state: SwitchState,
  { target, from }: { target: string; from: string },
  lock: SiteLock,
  op: ReturnType<typeof startOperation>,
): Promise<void> {
  try {
    op.step('switch app servers');
    // the health checks once the live containers serve it: beside the standbys' removal
    await converge(ctx, state, target, async () => {
      op.step('health through the proxy');
      await healthThroughProxies(ctx);
    });
  } catch (err) {
    const failedStep = op.progress.step;
    const failedHost = err instanceof HostStepFailed ? err.host : undefined;
    op.step(`switching back to ${short(from)} (failed at ${failedStep})`);
    let problem: string | undefined;
    await CancellationScope.nonCancellable(async () => {
      try {
        await converge(ctx, state, from);
      } catch (e) {
        problem = rootMessage(e);
      }
    });
    let outOfLine: string[] = [];
    if (problem) {
      op.step(`converging the servers that answer on ${short(from)}`);
      outOfLine = await failAndConverge(
        lock,
        ctx,
        {
          operation: 'rollback',
          workflowId: workflowInfo().workflowId,
          at: new Date().toISOString(),
          step: failedStep,
          ...(failedHost ? { host: failedHost } : {}),
          cause: rootMessage(err),
          outOfLine: [`switch back to ${short(from)}: ${problem}`],
          stateBefore: lock.record.state === 'failed' ? targetState(lock.record) : 'active',
        },
        op,
      );
    }
    throw ApplicationFailure.create({
      type: 'RollbackFailed',
      message:
        `rolling ${ctx.siteId} back to ${short(target)} failed at "${failedStep}": ${rootMessage(err)}` +
        (problem && outOfLine.length
          ? `; SWITCH BACK INCOMPLETE, the site is failed: ${problem}; still out of line after converging ` +
            `the servers that answer: ${outOfLine.join('; ')} (qm repair ${ctx.siteId} once they answer)`
          : problem
            ? `; the switch back failed (${problem}), then converging put every server back on ${short(from)}`
            : `; every app server is still on ${short(from)}`),
      details: [{ failedStep, failedHost, problem, outOfLine }],
      cause: err instanceof Error ? err : undefined,
      nonRetryable: true,
    });
  }
}
