import { ApplicationFailure } from '@temporalio/workflow';
import type { AppSlot } from '../../schema/release';
import type { Profile } from '../../schema/profile';
import type { Placement, SiteRecord, SiteSpec } from '../../schema/site';
import { long15m, step1m } from '../lib/activities';
import { backendReadyFromProxies, siteHealthyThroughProxies } from '../lib/health';
import type { OperationProgress } from '../../protocol/operations';
import { allOrFirstFailure, onEveryHost } from '../lib/parallel';
import { siteRoute, slotPort } from '../lib/routes';

/**
 * Switching a site's app servers from one release to another with zero downtime, shared by
 * deployRelease and rollbackSite (and by their rollbacks). Every app host runs the site's `live`
 * app container on placement.port; during a switch a `standby` one runs beside it on
 * placement.port + 20000 (activities/site/render.ts):
 *
 *   standby(target) on every host, healthy as each proxy sees it
 *   → every proxy routes to the standby ports (one nginx reload each; requests in flight finish)
 *   → drain (the requests in flight on the old nginx workers finish, drainSeconds at most) →
 *   live(target) on every host, healthy, and cron on target beside it → every proxy routes back
 *   to the live ports → drain → standby removed.
 *
 * At every moment every proxy routes to containers that passed their health checks, so users see
 * no failed request; all hosts switch in the same reload, so users never see two releases mixed
 * for longer than that. Between operations only `live` runs, and routes point at placement.port,
 * so suspend, resume and patch rolls keep working unchanged.
 *
 * `converge(target)` reaches that end state from any point of a switch (the state says which
 * slot the proxies were last told to serve, and what the live containers run), so the same code
 * is the rollback: a failed deploy converges back on the release it started from.
 */

/** Where the switch stands: which slot the proxies serve, and what the live containers run. */
export interface SwitchState {
  serving: AppSlot;
  /** The release every live container runs, or 'mixed' (unknown, or being replaced). */
  live: string;
  /**
   * Every proxy is known to route to `serving`: read so when the switch started (observeServing),
   * or told so by a flip that went through (false from the moment a flip starts until it has).
   */
  routed: boolean;
  /** The release the cron container runs, or 'mixed' (unknown, or being replaced). */
  cron: string;
}

export interface SwitchContext {
  siteId: string;
  spec: SiteSpec;
  placement: Placement;
  profile: Profile;
  /** Inventory addresses, by host name. */
  addresses: Record<string, string>;
  progress: OperationProgress;
  drainSeconds: number;
  healthTimeoutMs: number;
}

/** A release as people read it: a commit's first 12 hex digits, any other name as it is. */
export const short = (release: string) => (/^[0-9a-f]{40}$/.test(release) ? release.slice(0, 12) : release);

/** The site's record, if a release can be switched on it (active, placed); else Conflict. */
export function requireActive(record: SiteRecord): SiteRecord {
  if (record.state !== 'active' || !record.spec || !record.placement)
    throw ApplicationFailure.create({
      type: 'Conflict',
      message: `site ${record.siteId} is ${record.state}; a release can only be switched on an active site`,
      nonRetryable: true,
    });
  return record;
}

/** Where a switch stands when it starts: the slot the proxies serve, and `from` live unless a switch was cut short. */
export function switchStateFrom(serving: AppSlot, from: string): SwitchState {
  const settled = serving === 'live' ? from : 'mixed';
  return { serving, live: settled, routed: true, cron: settled };
}

/** The site's route with every app host's backend on the slot's port. */
export const slotRoute = (ctx: SwitchContext, slot: AppSlot, mode: 'active' | 'maintenance' = 'active') =>
  siteRoute(ctx.spec, ctx.placement, ctx.addresses, { slot, mode });

/** What the proxies serve now (the first proxy's stored route): the slot whose port its backends use. */
export async function observeServing(ctx: Pick<SwitchContext, 'siteId' | 'placement'>): Promise<AppSlot> {
  const route = await step1m.readSiteRoute({ host: ctx.placement.proxyHosts[0]!, siteId: ctx.siteId });
  const standby = slotPort(ctx.placement, 'standby');
  return route && route.backends.length > 0 && route.backends.every((b) => b.port === standby)
    ? 'standby'
    : 'live';
}

/**
 * Bring the site to: every live container on `target`, every proxy routing to the live slot, no
 * standby, cron on `target`; from whatever point `state` describes, without a moment where a proxy
 * routes to a container that has not passed its health check. `alongside` (what the caller does
 * once the live containers serve: hooks, health) runs beside the standby removal; converge returns
 * (or throws the first failure) once both are done.
 */
export async function converge(
  ctx: SwitchContext,
  state: SwitchState,
  target: string,
  alongside?: () => Promise<void>,
): Promise<void> {
  if (state.live !== target) {
    if (state.serving === 'live') {
      // the standby serves nothing: (re)start it on the target, then move traffic onto it
      await startSlot(ctx, 'standby', target);
    }
    // serving from the standby (just started, or still up from a switch cut short): it passed its checks
    await flip(ctx, state, 'standby');
    state.live = 'mixed';
    // the target serves from the standbys now: cron moves to it while the live containers do
    await allOrFirstFailure([startSlot(ctx, 'live', target), startCron(ctx, state, target)]);
    state.live = target;
  }
  // Nothing is asked of a proxy that routes to the live slot already, nor of a cron already on the
  // target: a deploy that failed before its first flip rolls back on the app servers alone (its
  // standbys removed), even with its proxy or storage host unreachable.
  if (state.serving !== 'live' || !state.routed) await flip(ctx, state, 'live');
  // the live containers run the target and serve: cron (if not moved yet) and what the caller
  // does next need not wait for the standbys, which serve nothing now, to go
  await allOrFirstFailure([
    removeStandbys(ctx, target),
    state.cron === target ? Promise.resolve() : startCron(ctx, state, target),
    alongside ? alongside() : Promise.resolve(),
  ]);
}

/** The site's health through every proxy, once per app server (the proxies balance round robin). */
export function healthThroughProxies(ctx: SwitchContext): Promise<void> {
  return siteHealthyThroughProxies(
    { placement: ctx.placement, domains: ctx.spec.domains, profile: ctx.profile },
    { mode: 'every-server-at-once' },
  );
}

/** Every proxy routes to the slot; then, if that changed anything, wait for requests in flight. */
async function flip(ctx: SwitchContext, state: SwitchState, slot: AppSlot): Promise<void> {
  // set first: a flip cut short is finished (or undone) by the next converge
  state.serving = slot;
  state.routed = false;
  let changed = false;
  // every proxy at once: a route is per proxy host, so no two of these touch the same nginx
  await onEveryHost(ctx.placement.proxyHosts, async (host) => {
    changed = (await step1m.putSiteRoute({ host, route: slotRoute(ctx, slot) })).changed || changed;
  });
  state.routed = true;
  for (const h of ctx.placement.appHosts) ctx.progress.hosts[h] = `serving from ${slot}`;
  // wait for the requests in flight on the old nginx workers (those told to shut down), drainSeconds at most
  if (changed && ctx.drainSeconds > 0)
    await onEveryHost(ctx.placement.proxyHosts, (host) =>
      long15m.waitForInFlight({ host, timeoutSeconds: ctx.drainSeconds }),
    );
}

/** The slot's app container on every host on `release`, healthy from every proxy. */
async function startSlot(ctx: SwitchContext, slot: AppSlot, release: string): Promise<void> {
  const { siteId, placement, profile } = ctx;
  await onEveryHost(placement.appHosts, async (host) => {
    ctx.progress.hosts[host] = `starting ${slot} ${short(release)}`;
    await long15m.ensureReleaseContainer({
      siteId,
      host,
      role: 'app',
      slot,
      release,
      profile,
      site: ctx.spec,
      placement,
      timeoutMs: ctx.healthTimeoutMs,
    });
    // from every proxy at once
    await backendReadyFromProxies(
      { placement, domains: ctx.spec.domains, profile },
      { host, port: slotPort(placement, slot) },
      ctx.healthTimeoutMs,
    );
    ctx.progress.hosts[host] = `${slot} ${short(release)} healthy`;
  });
}

/** Cron on `release` beside the first app host's live container (when the profile has cron). */
async function startCron(ctx: SwitchContext, state: SwitchState, release: string): Promise<void> {
  state.cron = 'mixed';
  if (ctx.profile.containers.cron)
    await long15m.ensureReleaseContainer({
      siteId: ctx.siteId,
      host: ctx.placement.appHosts[0]!,
      role: 'cron',
      slot: 'live',
      release,
      profile: ctx.profile,
      site: ctx.spec,
      placement: ctx.placement,
      timeoutMs: ctx.healthTimeoutMs,
    });
  state.cron = release;
}

/** The standby containers go, on every host at once (they serve nothing once the live ones do). */
function removeStandbys(ctx: SwitchContext, target: string): Promise<void> {
  return onEveryHost(ctx.placement.appHosts, async (host) => {
    await step1m.removeStandbyContainer({ siteId: ctx.siteId, host });
    ctx.progress.hosts[host] = `live on ${short(target)}`;
  });
}
