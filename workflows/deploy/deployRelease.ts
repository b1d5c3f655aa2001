import {
  ApplicationFailure,
  CancellationScope,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { AppSlot } from '../../schema/release';
import { siteNames, type SiteSpec } from '../../schema/site';
import { long15m, once30m, step1m } from '../lib/activities';
import { INITIAL_RELEASE } from '../../protocol/ids';
import { parseWorkflowInput, rootMessage } from '../lib/input';
import { startOperation } from '../lib/operation';
import { failAndConverge } from '../lib/convergeSite';
import { allOrFirstFailure, HostStepFailed } from '../lib/parallel';
import { addressesOf } from '../lib/routes';
import { withSiteLock, type SiteLock } from '../lib/siteLock';
import { DeployReleaseInput, type DeployReleaseResult } from '../../protocol/operations';
import { Release } from '../../protocol/searchAttributes';
import {
  converge,
  healthThroughProxies,
  observeServing,
  requireActive,
  short,
  slotRoute,
  switchStateFrom,
  type SwitchContext,
  type SwitchState,
} from './switch';

type Input = z.output<typeof DeployReleaseInput>;
type Operation = ReturnType<typeof startOperation>;
/** What every result of this deploy says: the site, who asked, why, and the release it started from. */
type Base = Pick<DeployReleaseResult, 'siteId' | 'triggeredBy' | 'trigger' | 'previous'>;

/**
 * Deploy a release (a commit of the site's repository) to every app server of a site, as ops
 * would by hand:
 *   validate → lock the site → (a push: still the branch's head? else superseded) → snapshot the
 *   database and fetch the commit onto every app server, in parallel → switch every server with
 *   zero downtime (switch.ts: standby beside live, health as the proxy sees it, flip, drain)
 *   → postDeploy hooks once, in one app container → health through every proxy → record the
 *   release → keep the last N releases.
 * Any failure switches every server back to the release it started from (the same zero-downtime
 * switch), and if the hooks had started, restores the database snapshot behind the maintenance
 * page first. The workflow then fails with the cause, and says whether the rollback was complete.
 */
export async function deployRelease(input: DeployReleaseInput): Promise<DeployReleaseResult> {
  const i = parseWorkflowInput(DeployReleaseInput, input, 'deployRelease input');
  const triggeredBy = i.triggeredBy ?? (i.push ? `push:${i.push.pusher}` : 'ui');
  const trigger: DeployReleaseResult['trigger'] = i.push
    ? { kind: 'push', push: i.push }
    : { kind: 'request', ref: i.ref ?? i.commit, reason: i.reason };
  const what = i.commit ? short(i.commit) : i.ref!;
  const op = startOperation({
    operation: 'deploy',
    siteId: i.siteId,
    triggeredBy,
    summary:
      `deploy ${what} to ${i.siteId}` +
      (i.push
        ? ` (push to ${i.push.branch} by ${i.push.pusher})`
        : ` (${triggeredBy}${i.reason ? `: ${i.reason}` : ''})`),
  });
  upsertMemo({ trigger });
  if (i.commit) upsertSearchAttributes([{ key: Release, value: i.commit }]);

  return withSiteLock(i.siteId, 'deploy', op.progress, async (lock) => {
    const record = requireActive(lock.record);
    const spec = record.spec!;
    const from = record.release ?? INITIAL_RELEASE;
    const base: Base = { siteId: i.siteId, triggeredBy, trigger, previous: from };

    const target = await whatToDeploy(i, spec, from, op);
    if (target.status) {
      op.finish();
      return { ...base, ...target };
    }
    const { commit } = target;
    const snapshot = `deploy-${short(commit)}-${workflowInfo().runId.slice(0, 8)}`;
    const { ctx, serving } = await prepare(i, lock, commit, snapshot, op);
    const state = switchStateFrom(serving, from);
    await switchOrRollBack(ctx, state, { commit, from, snapshot }, lock, op);

    // healthy everywhere: record the release and prune the old ones at the same time (the
    // pruning never fails the deploy, and never removes the live release or the one before)
    op.step('record the release, keep the last releases');
    const [, prune] = await Promise.all([
      lock.update({ release: commit }),
      pruneReleases(ctx, commit, from, i.keepReleases),
    ]);
    op.finish();
    return {
      ...base,
      status: 'deployed',
      release: commit,
      hosts: { ...op.progress.hosts },
      snapshot,
      kept: prune.kept,
      pruneProblems: prune.problems.length ? prune.problems : undefined,
    };
  });
}

/**
 * The commit to deploy, or why nothing is deployed: a push for a repo or branch the site no
 * longer tracks; a push that a newer one to the branch superseded (only the branch's head of the
 * pushes queued while a deploy ran deploys); a commit already live.
 */
async function whatToDeploy(
  i: Input,
  spec: SiteSpec,
  from: string,
  op: Operation,
): Promise<
  { status?: undefined; commit: string } | Pick<DeployReleaseResult, 'status' | 'release' | 'supersededBy'>
> {
  if (i.push && (i.push.repo !== spec.git.repo || i.push.branch !== spec.git.branch))
    return { status: 'not-tracking', release: from };
  op.step('resolve');
  const commit = i.commit ?? (await step1m.resolveGitRef({ repo: spec.git.repo, ref: i.ref! })).commit;
  upsertSearchAttributes([{ key: Release, value: commit }]);
  if (i.push) {
    // Coalescing: of the pushes that queued while a deploy ran, only the branch's head deploys.
    const { commit: head } = await step1m.gitBranchHead({ repo: i.push.repo, branch: i.push.branch });
    if (head && head !== commit) {
      upsertMemo({ outcome: `superseded by ${head}` });
      return { status: 'superseded', release: commit, supersededBy: head };
    }
  }
  if (from === commit) return { status: 'unchanged', release: commit };
  return { commit };
}

/**
 * Snapshot the database and fetch the commit onto every app server, all at once; the profile, the
 * inventory and where the proxies stand are read meanwhile. Returns the switch's context, and
 * which slot the proxies serve.
 */
async function prepare(
  i: Input,
  lock: SiteLock,
  commit: string,
  snapshot: string,
  op: Operation,
): Promise<{ ctx: SwitchContext; serving: AppSlot }> {
  const spec = lock.record.spec!;
  const placement = lock.record.placement!;
  const takeSnapshot = () =>
    long15m.snapshotSiteDatabase({ siteId: i.siteId, dbHost: placement.dbHost, name: snapshot });
  const fetchEverywhere = () =>
    placement.appHosts.map(async (host) => {
      op.progress.hosts[host] = `fetching ${short(commit)}`;
      await long15m.fetchRelease({ siteId: i.siteId, host, repo: spec.git.repo, commit });
      op.progress.hosts[host] = `fetched ${short(commit)}`;
    });
  op.step('snapshot database, fetch release');
  const reads = [
    step1m.loadProfile({ name: spec.profile }),
    step1m.listHosts(),
    observeServing({ siteId: i.siteId, placement }),
  ] as const;
  await allOrFirstFailure<unknown>([...reads, takeSnapshot(), ...fetchEverywhere()]);
  const [profile, inventory, serving] = [await reads[0], await reads[1], await reads[2]];
  const gitHost = inventory.find((h) => h.roles.includes('git'))?.name;
  op.hosts([...placement.appHosts, placement.dbHost, ...placement.proxyHosts, ...(gitHost ? [gitHost] : [])]);
  const ctx: SwitchContext = {
    siteId: i.siteId,
    spec,
    placement,
    profile,
    addresses: addressesOf(inventory),
    progress: op.progress,
    drainSeconds: i.drainSeconds,
    healthTimeoutMs: i.healthTimeoutSeconds * 1000,
  };
  return { ctx, serving };
}

/**
 * The switch onto the commit, with the postDeploy hooks and the health checks once the live
 * containers serve it (beside the standbys' removal). On failure, back to `from` (rollBack) and
 * fail the workflow with the cause, saying whether the rollback was complete.
 */
async function switchOrRollBack(
  ctx: SwitchContext,
  state: SwitchState,
  { commit, from, snapshot }: { commit: string; from: string; snapshot: string },
  lock: SiteLock,
  op: Operation,
): Promise<void> {
  const { profile, placement } = ctx;
  let hooksStarted = false;
  try {
    const hooksAndHealth = async () => {
      if (profile.hooks.postDeploy.length) {
        op.step('postDeploy hooks');
        hooksStarted = true;
        await once30m.runPostDeployHooks({
          siteId: ctx.siteId,
          host: placement.appHosts[0]!,
          hooks: profile.hooks.postDeploy,
        });
      }
      op.step('health through the proxy');
      await healthThroughProxies(ctx);
    };
    op.step('switch app servers');
    await converge(ctx, state, commit, hooksAndHealth);
  } catch (err) {
    const failedStep = op.progress.step;
    const failedHost = err instanceof HostStepFailed ? err.host : undefined;
    op.step(`rolling back to ${short(from)} (failed at ${failedStep})`);
    const undo = await rollBack(ctx, state, from, hooksStarted ? snapshot : undefined);
    for (const h of placement.appHosts)
      op.progress.hosts[h] = undo.problems.length ? 'UNKNOWN' : `back on ${short(from)}`;
    let outOfLine: string[] = [];
    if (undo.problems.length) {
      // the site is failed, with its cause; every server that answers goes back on `from` at
      // once (none left routing to the new commit's standbys, nor in maintenance), the database
      // on the snapshot if the hooks ran and it is not yet
      op.step(`converging the servers that answer on ${short(from)}`);
      outOfLine = await failAndConverge(
        lock,
        ctx,
        {
          operation: 'deploy',
          workflowId: workflowInfo().workflowId,
          at: new Date().toISOString(),
          step: failedStep,
          ...(failedHost ? { host: failedHost } : {}),
          cause: rootMessage(err),
          outOfLine: undo.problems,
          stateBefore: 'active',
          ...(hooksStarted && !undo.databaseRestored ? { databaseSnapshot: snapshot } : {}),
        },
        op,
      );
    }
    throw ApplicationFailure.create({
      type: 'DeployFailed',
      message:
        `deploying ${short(commit)} to ${ctx.siteId} failed at "${failedStep}": ${rootMessage(err)}` +
        (undo.problems.length && outOfLine.length
          ? `; ROLLBACK INCOMPLETE, the site is failed: ${undo.problems.join('; ')}; still out of line after ` +
            `converging the servers that answer: ${outOfLine.join('; ')} (qm repair ${ctx.siteId} once they answer)`
          : undo.problems.length
            ? `; the switch back failed (${undo.problems.join('; ')}), then converging put every server back on ` +
              `${short(from)}: the site is active`
            : `; every app server is back on ${short(from)}` +
              (undo.databaseRestored ? `, and the database on snapshot ${snapshot}` : '')),
      details: [
        {
          failedStep,
          failedHost,
          rolledBack: undo.problems.length === 0,
          databaseRestored: undo.databaseRestored,
          problems: undo.problems,
          outOfLine,
          snapshot,
        },
      ],
      cause: err instanceof Error ? err : undefined,
      nonRetryable: true,
    });
  }
}

/**
 * Back to `from` after a failure: if the hooks may have changed the database, the maintenance
 * page goes up and the snapshot is restored first (the old code must not run on a half-migrated
 * database, and nobody may write to one being restored); then the zero-downtime switch back.
 * Runs even if the workflow is cancelled; reports what it could not do instead of throwing.
 */
async function rollBack(
  ctx: SwitchContext,
  state: SwitchState,
  from: string,
  restoreSnapshot: string | undefined,
): Promise<{ problems: string[]; databaseRestored: boolean }> {
  const problems: string[] = [];
  let databaseRestored = false;
  await CancellationScope.nonCancellable(async () => {
    if (restoreSnapshot) {
      try {
        for (const host of ctx.placement.proxyHosts)
          await step1m.putSiteRoute({ host, route: slotRoute(ctx, state.serving, 'maintenance') });
        await long15m.restoreDatabaseSnapshot({
          host: ctx.placement.dbHost,
          db: siteNames(ctx.siteId).database,
          name: restoreSnapshot,
        });
        databaseRestored = true;
      } catch (err) {
        problems.push(`restore database snapshot ${restoreSnapshot}: ${rootMessage(err)}`);
        return; // the maintenance page stays up: the site must not serve a database in doubt
      }
    }
    try {
      await converge(ctx, state, from);
    } catch (err) {
      problems.push(`switch back to ${short(from)}: ${rootMessage(err)}`);
    }
  });
  return { problems, databaseRestored };
}

/** Mark the release live on every app host and keep the last `keep`; problems are reported, not fatal. */
async function pruneReleases(
  ctx: SwitchContext,
  live: string,
  previous: string,
  keep: number,
): Promise<{ kept: string[]; problems: string[] }> {
  const problems: string[] = [];
  let kept: string[] = [];
  await Promise.all(
    ctx.placement.appHosts.map(async (host, n) => {
      try {
        const r = await step1m.pruneReleases({
          siteId: ctx.siteId,
          host,
          live,
          keep,
          protect: [previous],
        });
        if (n === 0) kept = r.kept;
      } catch (err) {
        problems.push(`${host}: ${rootMessage(err)}`);
      }
    }),
  );
  return { kept, problems };
}
