import {
  ApplicationFailure,
  CancellationScope,
  patched,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { INITIAL_RELEASE } from '../protocol/ids';
import { DeployReleaseInput, type DeployReleaseResult } from '../protocol/operations';
import { Release } from '../protocol/searchAttributes';
import { siteNames, type SiteRecord } from '../schema/site';
import { quick, slow } from './lib/activities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { startOperation } from './lib/operation';
import {
  allOrFirstFailure,
  converge,
  healthThroughProxies,
  HostStepFailed,
  observeServing,
  once,
  short,
  slotRoute,
  type SwitchContext,
  type SwitchState,
} from './lib/release';
import { withSiteLock } from './lib/siteLock';
import type { Profile } from '../schema/profile';
import type { AppSlot } from '../schema/release';

/**
 * The deploy's independent reads beside the snapshot and fetches, and the record beside the
 * pruning (a patch: histories recorded before it replay the old order).
 */
const PARALLEL_DEPLOY = 'deploy-parallel-steps';

/**
 * Deploy a release (a commit of the site's repository) to every app server of a site, as ops
 * would by hand:
 *   validate → lock the site → (a push: still the branch's head? else superseded) → snapshot the
 *   database and fetch the commit onto every app server, in parallel → switch every server with
 *   zero downtime (lib/release.ts: standby beside live, health as the proxy sees it, flip, drain)
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
    const placement = record.placement!;
    const from = record.release ?? INITIAL_RELEASE;
    const base = { siteId: i.siteId, triggeredBy, trigger, previous: from };

    if (i.push && (i.push.repo !== spec.git.repo || i.push.branch !== spec.git.branch)) {
      op.finish();
      return { ...base, status: 'not-tracking', release: from };
    }
    op.step('resolve');
    const commit = i.commit ?? (await quick.resolveGitRef({ repo: spec.git.repo, ref: i.ref! })).commit;
    upsertSearchAttributes([{ key: Release, value: commit }]);
    if (i.push) {
      // Coalescing: of the pushes that queued while a deploy ran, only the branch's head deploys.
      const { commit: head } = await quick.gitBranchHead({ repo: i.push.repo, branch: i.push.branch });
      if (head && head !== commit) {
        upsertMemo({ outcome: `superseded by ${head}` });
        op.finish();
        return { ...base, status: 'superseded', release: commit, supersededBy: head };
      }
    }
    if (from === commit) {
      op.finish();
      return { ...base, status: 'unchanged', release: commit };
    }

    const snapshot = `deploy-${short(commit)}-${workflowInfo().runId.slice(0, 8)}`;
    const workMs: Record<string, number> = {};
    const takeSnapshot = () =>
      slow.snapshotSiteDatabase({ siteId: i.siteId, dbHost: placement.dbHost, name: snapshot });
    const fetchEverywhere = () =>
      placement.appHosts.map(async (host) => {
        op.progress.hosts[host] = `fetching ${short(commit)}`;
        const fetched = await slow.fetchRelease({ siteId: i.siteId, host, repo: spec.git.repo, commit });
        workMs[host] = (workMs[host] ?? 0) + fetched.ms;
        op.progress.hosts[host] = `fetched ${short(commit)}`;
      });
    const parallel = patched(PARALLEL_DEPLOY);
    let profile: Profile;
    let inventory: Awaited<ReturnType<typeof quick.listHosts>>;
    let serving: AppSlot;
    if (parallel) {
      // the profile, the inventory and where the proxies stand are read while the snapshot and fetches run
      op.step('snapshot database, fetch release');
      const reads = [
        quick.loadProfile({ name: spec.profile }),
        quick.listHosts(),
        observeServing({ siteId: i.siteId, placement }),
      ] as const;
      await allOrFirstFailure<unknown>([...reads, takeSnapshot(), ...fetchEverywhere()]);
      [profile, inventory, serving] = [await reads[0], await reads[1], await reads[2]];
    } else {
      op.step('load profile');
      profile = await quick.loadProfile({ name: spec.profile });
      inventory = await quick.listHosts();
      serving = 'live'; // overwritten below: the old order reads it after the inventory
    }
    const gitHost = inventory.find((h) => h.roles.includes('git'))?.name;
    op.hosts([
      ...placement.appHosts,
      placement.dbHost,
      ...placement.proxyHosts,
      ...(gitHost ? [gitHost] : []),
    ]);
    const ctx: SwitchContext = {
      siteId: i.siteId,
      spec,
      placement,
      profile,
      addresses: Object.fromEntries(inventory.map((h) => [h.name, h.address])),
      progress: op.progress,
      drainSeconds: i.drainSeconds,
      healthTimeoutMs: i.healthTimeoutSeconds * 1000,
      workMs,
    };
    if (!parallel) {
      serving = await observeServing(ctx);
      op.step('snapshot database, fetch release');
      await Promise.all([takeSnapshot(), ...fetchEverywhere()]);
    }
    const state: SwitchState = { serving, live: from };
    if (state.serving !== 'live') state.live = 'mixed'; // an earlier switch was cut short

    let hooksStarted = false;
    try {
      const hooksAndHealth = async () => {
        if (profile.hooks.postDeploy.length) {
          op.step('postDeploy hooks');
          hooksStarted = true;
          await once.runPostDeployHooks({
            siteId: i.siteId,
            host: placement.appHosts[0]!,
            hooks: profile.hooks.postDeploy,
          });
        }
        op.step('health through the proxy');
        await healthThroughProxies(ctx);
      };
      op.step('switch app servers');
      // once the live containers serve the release: beside the standbys' removal (or after it,
      // in the order recorded before the release-switch-parallel patch)
      await converge(ctx, state, commit, hooksAndHealth);
    } catch (err) {
      const failedStep = op.progress.step;
      op.step(`rolling back to ${short(from)} (failed at ${failedStep})`);
      const undo = await rollBack(ctx, state, from, hooksStarted ? snapshot : undefined);
      for (const h of placement.appHosts)
        op.progress.hosts[h] = undo.problems.length ? 'UNKNOWN' : `back on ${short(from)}`;
      if (undo.problems.length) await lock.update({ state: 'failed' });
      throw ApplicationFailure.create({
        type: 'DeployFailed',
        message:
          `deploying ${short(commit)} to ${i.siteId} failed at "${failedStep}": ${rootMessage(err)}` +
          (undo.problems.length
            ? `; ROLLBACK INCOMPLETE, ops must finish it: ${undo.problems.join('; ')}`
            : `; every app server is back on ${short(from)}` +
              (undo.databaseRestored ? `, and the database on snapshot ${snapshot}` : '')),
        details: [
          {
            failedStep,
            failedHost: err instanceof HostStepFailed ? err.host : undefined,
            rolledBack: undo.problems.length === 0,
            databaseRestored: undo.databaseRestored,
            problems: undo.problems,
            snapshot,
          },
        ],
        cause: err instanceof Error ? err : undefined,
        nonRetryable: true,
      });
    }

    let prune: Awaited<ReturnType<typeof pruneReleases>>;
    if (parallel) {
      // healthy everywhere: record the release and prune the old ones at the same time (the
      // pruning never fails the deploy, and never removes the live release or the one before)
      op.step('record the release, keep the last releases');
      [, prune] = await Promise.all([
        lock.update({ release: commit }),
        pruneReleases(ctx, commit, from, i.keepReleases),
      ]);
    } else {
      await lock.update({ release: commit });
      op.step('keep the last releases');
      prune = await pruneReleases(ctx, commit, from, i.keepReleases);
    }
    op.finish();
    return {
      ...base,
      status: 'deployed',
      release: commit,
      hosts: { ...op.progress.hosts },
      snapshot,
      kept: prune.kept,
      serverWorkMs: ctx.workMs,
      pruneProblems: prune.problems.length ? prune.problems : undefined,
    };
  });
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
          await quick.putSiteRoute({ host, route: slotRoute(ctx, state.serving, 'maintenance') });
        await slow.restoreDatabaseSnapshot({
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
        const r = await quick.pruneReleases({
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

export function requireActive(record: SiteRecord): SiteRecord {
  if (record.state !== 'active' || !record.spec || !record.placement)
    throw ApplicationFailure.create({
      type: 'Conflict',
      message: `site ${record.siteId} is ${record.state}; a release can only be switched on an active site`,
      nonRetryable: true,
    });
  return record;
}
