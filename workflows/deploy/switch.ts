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
 * is the rollback: a failed deploy converges back on the release it started from. With hosts
 * marked `unreachable` (a repair, or a rollback that lost a host), it converges the others: those
 * app hosts are listed drained in every route and never touched, those proxies never written.
 */

/** Where the switch stands: which slot the proxies serve, and what the live containers run. */
export interface SwitchState {
  serving: AppSlot;
  /** The release every live container runs, or 'mixed' (unknown, or being replaced). */
  live: string;
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
  /** Hosts left alone (they do not answer): drained in the routes, never started, probed or written. */
  unreachable?: string[];
}

/** What a converge did: which proxies' routes changed, whether it switched, the standbys, cron. */
export interface ConvergeReport {
  /** The live containers were replaced through the standby slot (false: they already ran the target). */
  switched: boolean;
  /** Per proxy written: whether its route changed. */
  routes: Record<string, boolean>;
  /** Per app host: the standby removed, or none there. */
  standbys: Record<string, 'removed' | 'absent'>;
  /** Cron's container (ensureReleaseContainer's action), or why it was left alone. */
  cron?: string;
}

/** The app hosts a switch works on (all but the unreachable). */
export const appHostsOf = (ctx: Pick<SwitchContext, 'placement' | 'unreachable'>) =>
  ctx.placement.appHosts.filter((h) => !ctx.unreachable?.includes(h));

/** The proxies a switch writes (all but the unreachable). */
export const proxyHostsOf = (ctx: Pick<SwitchContext, 'placement' | 'unreachable'>) =>
  ctx.placement.proxyHosts.filter((h) => !ctx.unreachable?.includes(h));

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
  return { serving, live: serving === 'live' ? from : 'mixed' };
}

/** The site's route with every app host's backend on the slot's port (an unreachable host's drained). */
export const slotRoute = (
  ctx: SwitchContext,
  slot: AppSlot,
  mode: 'active' | 'maintenance' | 'suspended' = 'active',
) => {
  const route = siteRoute(ctx.spec, ctx.placement, ctx.addresses, { slot, mode });
  return ctx.unreachable?.length
    ? {
        ...route,
        backends: route.backends.map((b) =>
          ctx.unreachable!.includes(b.host) ? { ...b, state: 'drained' as const } : b,
        ),
      }
    : route;
};

/** What the proxies serve now (the first proxy's stored route): the slot whose port its backends use. */
export async function observeServing(
  ctx: Pick<SwitchContext, 'siteId' | 'placement' | 'unreachable'>,
): Promise<AppSlot> {
  const route = await step1m.readSiteRoute({ host: proxyHostsOf(ctx)[0]!, siteId: ctx.siteId });
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
): Promise<ConvergeReport> {
  const report: ConvergeReport = { switched: state.live !== target, routes: {}, standbys: {} };
  let cronDone = false;
  if (state.live !== target) {
    if (state.serving === 'live') {
      // the standby serves nothing: (re)start it on the target, then move traffic onto it
      await startSlot(ctx, 'standby', target);
    }
    // serving from the standby (just started, or still up from a switch cut short): it passed its checks
    await flip(ctx, state, 'standby', report);
    state.live = 'mixed';
    // the target serves from the standbys now: cron moves to it while the live containers do
    await allOrFirstFailure([startSlot(ctx, 'live', target), startCron(ctx, target, report)]);
    cronDone = true;
    state.live = target;
  }
  await flip(ctx, state, 'live', report);
  // the live containers run the target and serve: cron (if not moved yet) and what the caller
  // does next need not wait for the standbys, which serve nothing now, to go
  await allOrFirstFailure([
    removeStandbys(ctx, target, report),
    cronDone ? Promise.resolve() : startCron(ctx, target, report),
    alongside ? alongside() : Promise.resolve(),
  ]);
  return report;
}

/** The site's health through every proxy, once per app server (the proxies balance round robin). */
export function healthThroughProxies(ctx: SwitchContext): Promise<void> {
  return siteHealthyThroughProxies(
    { placement: reachablePlacement(ctx), domains: ctx.spec.domains, profile: ctx.profile },
    { mode: 'every-server-at-once' },
  );
}

/** The placement's app hosts and proxies that the switch works on. */
const reachablePlacement = (ctx: SwitchContext) => ({
  appHosts: appHostsOf(ctx),
  proxyHosts: proxyHostsOf(ctx),
});

/** Every proxy routes to the slot; then, if that changed anything, wait for requests in flight. */
async function flip(
  ctx: SwitchContext,
  state: SwitchState,
  slot: AppSlot,
  report: ConvergeReport,
): Promise<void> {
  state.serving = slot; // set first: a flip cut short is finished (or undone) by the next converge
  let changed = false;
  const proxies = proxyHostsOf(ctx);
  // every proxy at once: a route is per proxy host, so no two of these touch the same nginx
  await onEveryHost(proxies, async (host) => {
    const put = await step1m.putSiteRoute({ host, route: slotRoute(ctx, slot) });
    report.routes[host] = put.changed || (report.routes[host] ?? false);
    changed = put.changed || changed;
  });
  for (const h of appHostsOf(ctx)) ctx.progress.hosts[h] = `serving from ${slot}`;
  // wait for the requests in flight on the old nginx workers (those told to shut down), drainSeconds at most
  if (changed && ctx.drainSeconds > 0)
    await onEveryHost(proxies, (host) => long15m.waitForInFlight({ host, timeoutSeconds: ctx.drainSeconds }));
}

/** The slot's app container on every host on `release`, healthy from every proxy. */
async function startSlot(ctx: SwitchContext, slot: AppSlot, release: string): Promise<void> {
  const { siteId, placement, profile } = ctx;
  await onEveryHost(appHostsOf(ctx), async (host) => {
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
      { placement: reachablePlacement(ctx), domains: ctx.spec.domains, profile },
      { host, port: slotPort(placement, slot) },
      ctx.healthTimeoutMs,
    );
    ctx.progress.hosts[host] = `${slot} ${short(release)} healthy`;
  });
}

/**
 * Cron on `release` beside the first app host's live container (when the profile has cron); left
 * alone when that host is unreachable (cron runs on one host only: never moved to another).
 */
async function startCron(ctx: SwitchContext, release: string, report: ConvergeReport): Promise<void> {
  if (!ctx.profile.containers.cron) return;
  if (ctx.unreachable?.includes(ctx.placement.appHosts[0]!)) {
    report.cron = `left alone: ${ctx.placement.appHosts[0]!} is unreachable`;
    return;
  }
  const { action } = await long15m.ensureReleaseContainer({
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
  report.cron = action;
}

/** The standby containers go, on every host at once (they serve nothing once the live ones do). */
function removeStandbys(ctx: SwitchContext, target: string, report: ConvergeReport): Promise<void> {
  return onEveryHost(appHostsOf(ctx), async (host) => {
    report.standbys[host] = (await step1m.removeStandbyContainer({ siteId: ctx.siteId, host })).result;
    ctx.progress.hosts[host] = `live on ${short(target)}`;
  });
}
