import { patched, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE } from '../../activities/errors';
import { STANDBY_PORT_OFFSET, type AppSlot } from '../../schema/release';
import type { Profile } from '../../schema/profile';
import type { Route } from '../../schema/route';
import type { Placement, SiteSpec } from '../../schema/site';
import { patient, quick, slow } from './activities';
import { rootMessage } from './input';
import type { OperationProgress } from '../../protocol/operations';

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
  /** Per app host, the milliseconds its own steps took (fetch, containers, probes): for the benchmark. */
  workMs: Record<string, number>;
}

/**
 * The switch's independent steps side by side: every proxy flipped at once, each server's probes
 * from every proxy at once, cron moved to the target while the live containers are (once the
 * standbys serve the target; beside the standby removal when converging from a switch cut
 * short), the caller's next steps (hooks, health) beside the standby removal, the health checks
 * through the proxies all at once. A patch (replay safety): workflows
 * recorded before it replay the old, one-after-the-other order.
 */
const PARALLEL_SWITCH = 'release-switch-parallel';
const parallelSwitch = () => patched(PARALLEL_SWITCH);

/**
 * A patch (replay safety): after a flip, wait for the requests in flight on the old workers to
 * finish (every proxy's nginx workers told to shut down have exited), drainSeconds at most,
 * instead of sleeping drainSeconds whatever happens. Workflows recorded before it replay the sleep.
 */
const DRAIN_IN_FLIGHT = 'release-drain-in-flight';

/**
 * Every one of `steps` at once; wait for all of them (never leave one running behind a failure),
 * then throw the first failure.
 */
export async function allOrFirstFailure<T>(steps: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function addWork(ctx: SwitchContext, host: string, ms: number) {
  ctx.workMs[host] = (ctx.workMs[host] ?? 0) + ms;
}

/** The postDeploy hooks: at most once per deploy (a migration is not safe to repeat blindly). */
export const once = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 1, nonRetryableErrorTypes: [...NON_RETRYABLE] },
});

export const slotPort = (placement: Placement, slot: AppSlot) =>
  placement.port + (slot === 'standby' ? STANDBY_PORT_OFFSET : 0);

/** The site's route with every app host's backend on the slot's port. */
export function slotRoute(ctx: SwitchContext, slot: AppSlot, mode: Route['mode'] = 'active'): Route {
  return {
    siteId: ctx.siteId,
    domains: ctx.spec.domains,
    backends: ctx.placement.appHosts.map((host) => ({
      host,
      address: ctx.addresses[host]!,
      port: slotPort(ctx.placement, slot),
      state: 'active' as const,
    })),
    mode,
  };
}

/**
 * Run `fn` on every host at once and wait for all of them (never leave one running behind a
 * failure: what comes next, a rollback, must not race it); throw the first failure, naming its host.
 */
export async function onEveryHost(hosts: string[], fn: (host: string) => Promise<unknown>): Promise<void> {
  const results = await Promise.allSettled(hosts.map((h) => fn(h)));
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    const reason = (results[failed] as PromiseRejectedResult).reason as unknown;
    const others = results.filter((r) => r.status === 'rejected').length - 1;
    throw new HostStepFailed(hosts[failed]!, reason, others);
  }
}

export class HostStepFailed extends Error {
  override readonly name = 'HostStepFailed';
  constructor(
    readonly host: string,
    reason: unknown,
    others: number,
  ) {
    super(`${host}: ${rootMessage(reason)}${others ? ` (and ${others} other host(s))` : ''}`, {
      cause: reason instanceof Error ? reason : undefined,
    });
  }
}

/** What the proxies serve now (the first proxy's stored route): the slot whose port its backends use. */
export async function observeServing(ctx: Pick<SwitchContext, 'siteId' | 'placement'>): Promise<AppSlot> {
  const route = await quick.readSiteRoute({ host: ctx.placement.proxyHosts[0]!, siteId: ctx.siteId });
  const standby = slotPort(ctx.placement, 'standby');
  return route && route.backends.length > 0 && route.backends.every((b) => b.port === standby)
    ? 'standby'
    : 'live';
}

/** Every proxy routes to the slot; then, if that changed anything, wait for requests in flight. */
async function flip(ctx: SwitchContext, state: SwitchState, slot: AppSlot): Promise<void> {
  state.serving = slot; // set first: a flip cut short is finished (or undone) by the next converge
  let changed = false;
  if (parallelSwitch()) {
    // every proxy at once: a route is per proxy host, so no two of these touch the same nginx
    await onEveryHost(ctx.placement.proxyHosts, async (host) => {
      changed = (await quick.putSiteRoute({ host, route: slotRoute(ctx, slot) })).changed || changed;
    });
  } else
    for (const host of ctx.placement.proxyHosts)
      changed = (await quick.putSiteRoute({ host, route: slotRoute(ctx, slot) })).changed || changed;
  for (const h of ctx.placement.appHosts) ctx.progress.hosts[h] = `serving from ${slot}`;
  if (changed && ctx.drainSeconds > 0) {
    if (patched(DRAIN_IN_FLIGHT))
      await onEveryHost(ctx.placement.proxyHosts, (host) =>
        slow.waitForInFlight({ host, timeoutSeconds: ctx.drainSeconds }),
      );
    else await sleep(ctx.drainSeconds * 1000);
  }
}

/** The slot's app container on every host on `release`, healthy from every proxy. */
async function startSlot(ctx: SwitchContext, slot: AppSlot, release: string): Promise<void> {
  const { siteId, placement, profile } = ctx;
  await onEveryHost(placement.appHosts, async (host) => {
    ctx.progress.hosts[host] = `starting ${slot} ${short(release)}`;
    const started = await slow.ensureReleaseContainer({
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
    addWork(ctx, host, started.ms);
    const probe = (proxyHost: string) =>
      slow.probeBackend({
        proxyHost,
        backendHost: host,
        port: slotPort(placement, slot),
        domain: ctx.spec.domains[0]!,
        path: profile.health.path,
        expectStatus: profile.health.expectStatus,
        expectText: profile.health.expectText,
        timeoutMs: ctx.healthTimeoutMs,
      });
    if (parallelSwitch()) {
      // from every proxy at once; the server's work is the slowest of them
      const probes = await allOrFirstFailure(placement.proxyHosts.map(probe));
      addWork(ctx, host, Math.max(...probes.map((p) => p.ms)));
    } else
      for (const proxyHost of placement.proxyHosts) {
        addWork(ctx, host, (await probe(proxyHost)).ms);
      }
    ctx.progress.hosts[host] = `${slot} ${short(release)} healthy`;
  });
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
  const { placement, siteId } = ctx;
  const parallel = parallelSwitch();
  const cron = async () => {
    if (ctx.profile.containers.cron)
      await slow.ensureReleaseContainer({
        siteId,
        host: placement.appHosts[0]!,
        role: 'cron',
        slot: 'live',
        release: target,
        profile: ctx.profile,
        site: ctx.spec,
        placement,
        timeoutMs: ctx.healthTimeoutMs,
      });
  };
  let cronDone = false;
  if (state.live !== target) {
    if (state.serving === 'live') {
      // the standby serves nothing: (re)start it on the target, then move traffic onto it
      await startSlot(ctx, 'standby', target);
    }
    // serving from the standby (just started, or still up from a switch cut short): it passed its checks
    await flip(ctx, state, 'standby');
    state.live = 'mixed';
    if (parallel) {
      // the target serves from the standbys now: cron moves to it while the live containers do
      await allOrFirstFailure([startSlot(ctx, 'live', target), cron()]);
      cronDone = true;
    } else await startSlot(ctx, 'live', target);
    state.live = target;
  }
  await flip(ctx, state, 'live');
  const removeStandbys = () =>
    onEveryHost(placement.appHosts, async (host) => {
      addWork(ctx, host, (await quick.removeStandbyContainer({ siteId, host })).ms);
      ctx.progress.hosts[host] = `live on ${short(target)}`;
    });
  if (parallel) {
    // the live containers run the target and serve: cron (if not moved yet) and what the caller
    // does next need not wait for the standbys, which serve nothing now, to go
    await allOrFirstFailure([
      removeStandbys(),
      cronDone ? Promise.resolve() : cron(),
      alongside ? alongside() : Promise.resolve(),
    ]);
  } else {
    await removeStandbys();
    await cron();
    if (alongside) await alongside();
  }
}

/** The site's health through every proxy, once per app server (the proxies balance round robin). */
export async function healthThroughProxies(ctx: SwitchContext): Promise<void> {
  const check = (proxyHost: string) =>
    patient.checkSiteHealth({
      proxyHost,
      domain: ctx.spec.domains[0]!,
      path: ctx.profile.health.path,
      expectStatus: ctx.profile.health.expectStatus,
      expectText: ctx.profile.health.expectText,
    });
  if (parallelSwitch()) {
    // all at once: as many requests as before, each balanced by nginx as before
    await allOrFirstFailure(
      ctx.placement.proxyHosts.flatMap((p) => ctx.placement.appHosts.map(() => check(p))),
    );
    return;
  }
  for (const proxyHost of ctx.placement.proxyHosts)
    for (let n = 0; n < ctx.placement.appHosts.length; n++) await check(proxyHost);
}

export const short = (release: string) => (/^[0-9a-f]{40}$/.test(release) ? release.slice(0, 12) : release);
