import {
  CancellationScope,
  patched,
  proxyActivities,
  proxyLocalActivities,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE } from '../../activities/errors';
import type { Profile } from '../../schema/profile';
import { withBackendState, type Route } from '../../schema/route';
import type { SiteRecord } from '../../schema/site';
import { quick, slow } from './activities';
import { local, localContainers, localPatient } from './patchActivities';
import { rootMessage } from './input';
import {
  PATCH_FAILED,
  type HostProgress,
  type HostState,
  type PatchRollConfig,
  type SiteAction,
} from '../../protocol/patchRoll';
import type { HostDecision } from './patchPlan';

/**
 * patched() id of the quicker hand-over between hosts: a drain and its readmit give the proxy the
 * route the roll already holds under the site's lock (no read before the change); in patchRoll.ts,
 * the next batch is listed while this one's locks are released, and the locks are asked for by a
 * local activity. Runs recorded before it replay without.
 */
export const HANDOVER = 'patch-roll-handover';

/**
 * patched() id of the wait for requests in flight: once a host is taken out, its proxies' nginx
 * workers that still hold requests from before the change are waited for (drainTimeoutSeconds at
 * most) before the patch starts. Runs recorded before it replay without.
 */
export const IN_FLIGHT = 'patch-roll-in-flight';

/**
 * patched() id of the containers' check as a local activity after a patch that needed no reboot
 * (no task-queue round trip: it is one listing when all is well). Runs recorded before it replay
 * with the ordinary activity.
 */
export const LOCAL_CONTAINER_CHECK = 'patch-roll-local-container-check';

/**
 * patched() id of the wait for requests in flight made by each drain (or maintenance page)
 * itself, in the same command on the proxy host, instead of by one more step after them. Runs
 * recorded before it replay with the separate step.
 */
export const DRAIN_WAITS = 'patch-roll-drain-waits';

/** A site on the host, as the roll sees it under the site's lock. */
export interface LockedSite {
  siteId: string;
  record: SiteRecord;
  /** Its stored route on each of its proxy hosts (active sites only). */
  routes: Map<string, Route>;
  /** Whether any of its containers on this host ran before the patch. */
  ranHere: boolean;
  /** Its containers' roles on this host (app, cache, cron). */
  rolesHere: string[];
}

export interface HostContext {
  cfg: PatchRollConfig;
  rollId: string;
  host: string;
  progress: HostProgress;
  sites: Map<string, LockedSite>;
  /** Why the host's patch must not start now (skip, abort, budget, window), or undefined to go on. */
  mayStart(): { state: HostState; reason: string } | undefined;
  profile(name: string): Promise<Profile>;
}

/**
 * One host's turn, as ops would do it by hand:
 *   take its sites' traffic off it (drain its backend on every proxy; the maintenance page for a
 *   site it alone serves) → the requests still in flight finish (drainTimeoutSeconds at most) →
 *   last look (skip, abort, window, budget) → patch → reboot if needed and
 *   wait for it → its sites' containers running and healthy (files remounted after a reboot) →
 *   each backend answers, straight from the proxy host → readmit → each site answers through the
 *   proxy → done.
 * The caller holds the locks of all the host's sites. Every step is an idempotent activity, so a
 * worker that dies mid-host resumes at the step it was on (Temporal replays the rest).
 * On failure before the patch started, what was taken out is put back (the host is as it was);
 * after, the host stays out of rotation (drained, or its single-server sites on the maintenance
 * page) and the failure is reported: a half-patched host must not take traffic until a person
 * has looked.
 */
export async function patchHost(
  ctx: HostContext,
  decision: HostDecision,
): Promise<'done' | 'failed' | 'stopped'> {
  const { cfg, host, progress: hp } = ctx;
  hp.sites = decision.actions;
  if (decision.heldBack) return finish(hp, 'held-back', decision.heldBack, 'untouched');

  const out = decision.actions.filter((a) => a.action !== 'none');
  let takenOut = false;
  let patchStarted = false;
  const acts = hostActivities(cfg);
  try {
    hp.state = 'draining';
    takenOut = out.length > 0;
    const drainWaits = takenOut && patched(DRAIN_WAITS);
    const lingering = new Map<string, number>();
    await forEachSite(ctx, out, (site, action) =>
      takeOut(ctx, site, action, drainWaits ? { acts, lingering } : undefined),
    );
    if (drainWaits) noteInFlight(ctx, hp, lingering);
    else if (takenOut && patched(IN_FLIGHT)) await waitForInFlight(ctx, out, hp, acts);

    const stop = ctx.mayStart();
    if (stop) {
      if (takenOut) await putBack(ctx, out);
      return finish(hp, stop.state, stop.reason, takenOut ? 'readmitted' : 'untouched');
    }

    hp.state = 'patching';
    patchStarted = true;
    const patch = await acts.patch.runPatch({
      host,
      rollId: ctx.rollId,
      command: cfg.patchCommand,
      timeoutSeconds: cfg.patchTimeoutSeconds,
      rebootCheck: cfg.reboot === 'if-required' ? cfg.rebootCheck : undefined,
    });
    hp.patch = { result: patch.result, seconds: patch.seconds };

    const reboot = cfg.reboot === 'always' || (cfg.reboot === 'if-required' && patch.rebootRequired === true);
    if (reboot) {
      hp.state = 'rebooting';
      const r = await acts.reboot.rebootHost({ host, rollId: ctx.rollId });
      await acts.wait.waitForHost({
        host,
        bootIdBefore: r.action === 'already-rebooted' ? undefined : r.bootIdBefore,
        timeoutSeconds: cfg.rebootTimeoutSeconds,
      });
      hp.rebooted = true;
    }

    hp.state = 'starting';
    const active = [...ctx.sites.values()].filter((s) => s.record.state === 'active' && s.record.placement);
    await Promise.all(
      active
        .filter((s) => s.ranHere)
        .map(async (s) => {
          const placement = s.record.placement!;
          // a reboot loses the sshfs mount of the site's files; the containers bind-mount it
          if (
            reboot &&
            s.rolesHere.some((r) => r === 'app' || r === 'cron') &&
            placement.appHosts.includes(host)
          )
            await quick.mountSiteFiles({ siteId: s.siteId, host, storageHost: placement.storageHost });
          const check = !reboot && patched(LOCAL_CONTAINER_CHECK) ? localContainers : slow;
          await check.startSiteContainers({ siteId: s.siteId, host });
        }),
    );

    hp.state = 'checking';
    await forEachSite(ctx, out, async (site) => {
      const profile = await ctx.profile(site.record.spec!.profile);
      for (const proxyHost of site.record.placement!.proxyHosts)
        await localPatient.checkBackendHealth({
          proxyHost,
          backendHost: host,
          port: site.record.placement!.port,
          domain: site.record.spec!.domains[0]!,
          path: profile.health.path,
          expectStatus: profile.health.expectStatus,
          expectText: profile.health.expectText,
        });
    });

    hp.state = 'readmitting';
    await putBack(ctx, out);
    takenOut = false;
    await forEachSite(ctx, out, async (site) => {
      const profile = await ctx.profile(site.record.spec!.profile);
      for (const proxyHost of site.record.placement!.proxyHosts)
        await localPatient.checkSiteHealth({
          proxyHost,
          domain: site.record.spec!.domains[0]!,
          path: profile.health.path,
          expectStatus: profile.health.expectStatus,
          expectText: profile.health.expectText,
        });
    });
    return finish(hp, 'done');
  } catch (err) {
    const reason = `${hp.state}: ${rootMessage(err)}`;
    // put the host back as it was if nothing was patched; else keep (or take) it out of rotation
    const leftAs = await CancellationScope.nonCancellable(async () => {
      try {
        if (!patchStarted) {
          if (takenOut) await putBack(ctx, out);
          return takenOut ? ('readmitted' as const) : ('untouched' as const);
        }
        if (!takenOut) await forEachSite(ctx, out, (site, action) => takeOut(ctx, site, action));
        return out.length ? ('drained' as const) : ('untouched' as const);
      } catch (undoErr) {
        hp.reason = `${reason}; and then: ${rootMessage(undoErr)}`;
        return patchStarted ? ('drained' as const) : ('untouched' as const);
      }
    });
    return finish(hp, 'failed', hp.reason ?? reason, leftAs);
  }
}

function finish(
  hp: HostProgress,
  state: HostState,
  reason?: string,
  leftAs?: HostProgress['leftAs'],
): 'done' | 'failed' | 'stopped' {
  hp.state = state;
  if (reason) hp.reason = reason;
  if (leftAs) hp.leftAs = leftAs;
  return state === 'done' ? 'done' : state === 'failed' ? 'failed' : 'stopped';
}

async function forEachSite(
  ctx: HostContext,
  actions: { siteId: string; action: SiteAction }[],
  fn: (site: LockedSite, action: SiteAction) => Promise<unknown>,
): Promise<void> {
  await Promise.all(actions.map((a) => fn(ctx.sites.get(a.siteId)!, a.action)));
}

/**
 * Drain the host's backend of the site on every proxy, or put the site on the maintenance page.
 * With `waiting` (DRAIN_WAITS), each change then waits for the requests in flight on its proxy
 * (drainTimeoutSeconds at most), and what still ran is noted by proxy.
 */
async function takeOut(
  ctx: HostContext,
  site: LockedSite,
  action: SiteAction,
  waiting?: { acts: ReturnType<typeof hostActivities>; lingering: Map<string, number> },
): Promise<void> {
  const acts = waiting ? waiting.acts.inFlight : local;
  const wait = waiting ? { waitInFlightSeconds: ctx.cfg.drainTimeoutSeconds } : {};
  await Promise.all(
    [...site.routes].map(async ([proxyHost, route]) => {
      const change =
        action === 'drain'
          ? await acts.setBackendState({
              host: proxyHost,
              siteId: site.siteId,
              backendHost: ctx.host,
              state: 'drained',
              ...(patched(HANDOVER) ? { expected: route } : {}),
              ...wait,
            })
          : await acts.putSiteRoute({ host: proxyHost, route: { ...route, mode: 'maintenance' }, ...wait });
      if (waiting)
        waiting.lingering.set(
          proxyHost,
          Math.max(waiting.lingering.get(proxyHost) ?? 0, change.lingering ?? 0),
        );
    }),
  );
}

/** What the waits for requests in flight left running, by proxy, in the host's progress (the patch goes ahead anyway). */
function noteInFlight(ctx: HostContext, hp: HostProgress, lingering: Map<string, number>): void {
  const left = [...lingering].filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : 1));
  if (left.length)
    hp.inFlightAtPatch =
      left.map(([host, n]) => `${host}: ${n} nginx worker(s) still finishing requests`).join('; ') +
      ` after ${ctx.cfg.drainTimeoutSeconds} s; patched anyway`;
}

/**
 * Requests the proxies took before the host was taken out may still be running on it: wait for
 * them (each proxy at once), at most drainTimeoutSeconds; past that the patch goes ahead, and
 * the host's progress says so.
 */
async function waitForInFlight(
  ctx: HostContext,
  out: { siteId: string }[],
  hp: HostProgress,
  acts: ReturnType<typeof hostActivities>,
): Promise<void> {
  const proxies = [...new Set(out.flatMap((a) => [...ctx.sites.get(a.siteId)!.routes.keys()]))].sort();
  const waited = await Promise.all(
    proxies.map(async (host) => {
      const w = await acts.inFlight.waitForInFlight({ host, timeoutSeconds: ctx.cfg.drainTimeoutSeconds });
      return [host, w.lingering] as const;
    }),
  );
  noteInFlight(ctx, hp, new Map(waited));
}

/** The reverse of takeOut: the route exactly as it was found (under the lock, nobody else changed it). */
async function putBack(ctx: HostContext, actions: { siteId: string; action: SiteAction }[]): Promise<void> {
  await forEachSite(ctx, actions, (site, action) =>
    Promise.all(
      [...site.routes].map(([proxyHost, route]) =>
        action === 'drain'
          ? local.setBackendState({
              host: proxyHost,
              siteId: site.siteId,
              backendHost: ctx.host,
              state: 'active',
              // what the drain stored (if it did not, the proxy's guard refuses it and reads)
              ...(patched(HANDOVER) ? { expected: withBackendState(route, ctx.host, 'drained') } : {}),
            })
          : local.putSiteRoute({ host: proxyHost, route }),
      ),
    ),
  );
}

/**
 * The patch, reboot and wait steps, with timeouts from the input. The patch is retried only for a
 * lost host or worker (its guard makes a retry safe), never when the command itself failed.
 */
function hostActivities(cfg: PatchRollConfig) {
  const retry: RetryPolicy = {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '20 seconds',
  };
  return {
    /** Watching the proxies: local (no task-queue round trip), as long as the wait may take. */
    inFlight: proxyLocalActivities<Activities>({
      startToCloseTimeout: `${cfg.drainTimeoutSeconds + 30} seconds`,
      retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
    patch: proxyActivities<Activities>({
      startToCloseTimeout: `${cfg.patchTimeoutSeconds + 120} seconds`,
      heartbeatTimeout: '20 seconds',
      retry: { ...retry, maximumAttempts: 4, nonRetryableErrorTypes: [...NON_RETRYABLE, PATCH_FAILED] },
    }),
    reboot: proxyActivities<Activities>({
      startToCloseTimeout: '3 minutes',
      heartbeatTimeout: '20 seconds',
      retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
    wait: proxyActivities<Activities>({
      startToCloseTimeout: `${cfg.rebootTimeoutSeconds + 60} seconds`,
      heartbeatTimeout: '30 seconds',
      retry: { ...retry, maximumAttempts: 2, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
  };
}
