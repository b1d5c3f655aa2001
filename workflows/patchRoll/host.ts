import { CancellationScope } from '@temporalio/workflow';
import type { Profile } from '../../schema/profile';
import { withBackendState, type Route } from '../../schema/route';
import type { SiteRecord } from '../../schema/site';
import { localHealth30s, localStep1m, localStep3m, long15m, patchRollSteps, step1m } from '../lib/activities';
import { backendHealthyFromProxies, siteHealthyThroughProxies } from '../lib/health';
import { rootMessage } from '../lib/input';
import type { PatchRollConfig } from '../../protocol/patchRoll';
import type { HostDecision } from './plan';
import type { SiteAction } from '../../protocol/patchRoll';
import type { HostProgress, HostState } from '../../protocol/patchRoll';

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
  const acts = patchRollSteps(cfg);
  try {
    hp.state = 'draining';
    takenOut = out.length > 0;
    // each drain (or maintenance page) waits for the requests in flight on its proxy itself
    const lingering = new Map<string, number>();
    await forEachSite(ctx, out, (site, action) => takeOut(ctx, site, action, { acts, lingering }));
    noteInFlight(ctx, hp, lingering);

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
            await step1m.mountSiteFiles({ siteId: s.siteId, host, storageHost: placement.storageHost });
          // after a patch without a reboot this is usually one listing: no task-queue round trip
          const check = reboot ? long15m : localStep3m;
          await check.startSiteContainers({ siteId: s.siteId, host });
        }),
    );

    hp.state = 'checking';
    await forEachSite(ctx, out, async (site) => {
      const { placement, spec } = site.record;
      const profile = await ctx.profile(spec!.profile);
      await backendHealthyFromProxies(
        { placement: placement!, domains: spec!.domains, profile },
        { host, port: placement!.port },
        { via: localHealth30s },
      );
    });

    hp.state = 'readmitting';
    await putBack(ctx, out);
    takenOut = false;
    await forEachSite(ctx, out, async (site) => {
      const { placement, spec } = site.record;
      const profile = await ctx.profile(spec!.profile);
      await siteHealthyThroughProxies(
        { placement: placement!, domains: spec!.domains, profile },
        { mode: 'each-proxy-in-turn', via: localHealth30s },
      );
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
 * The proxy is given the route the roll holds under the site's lock (no read before the change).
 * With `waiting`, each change then waits for the requests in flight on its proxy
 * (drainTimeoutSeconds at most), and what still ran is noted by proxy.
 */
async function takeOut(
  ctx: HostContext,
  site: LockedSite,
  action: SiteAction,
  waiting?: { acts: ReturnType<typeof patchRollSteps>; lingering: Map<string, number> },
): Promise<void> {
  const acts = waiting ? waiting.acts.inFlight : localStep1m;
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
              expected: route,
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

/** The reverse of takeOut: the route exactly as it was found (under the lock, nobody else changed it). */
async function putBack(ctx: HostContext, actions: { siteId: string; action: SiteAction }[]): Promise<void> {
  await forEachSite(ctx, actions, (site, action) =>
    Promise.all(
      [...site.routes].map(([proxyHost, route]) =>
        action === 'drain'
          ? localStep1m.setBackendState({
              host: proxyHost,
              siteId: site.siteId,
              backendHost: ctx.host,
              state: 'active',
              // what the drain stored (if it did not, the proxy's guard refuses it and reads)
              expected: withBackendState(route, ctx.host, 'drained'),
            })
          : localStep1m.putSiteRoute({ host: proxyHost, route }),
      ),
    ),
  );
}
