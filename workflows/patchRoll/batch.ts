import type { Profile } from '../../schema/profile';
import { step1m } from '../lib/activities';
import { patchHost, type LockedSite } from './host';
import type { Listing } from './listing';
import type { LockedBatch, RollLocks } from './locks';
import { decideBatch, type HostDecision, type SiteOnHost } from './plan';
import { waitFor, type RollState } from './state';

/** Profiles by name, loaded once per run. */
export class Profiles {
  private readonly loading = new Map<string, Promise<Profile>>();

  get(name: string): Promise<Profile> {
    if (!this.loading.has(name)) {
      const p = step1m.loadProfile({ name });
      this.loading.set(name, p);
      // kept for the run only once loaded: a later batch asks again after a failure
      p.catch(() => this.loading.get(name) === p && this.loading.delete(name));
    }
    return this.loading.get(name)!;
  }
}

/** What a run of the roll works with, batch after batch. */
export interface RollRun {
  roll: RollState;
  locks: RollLocks;
  profiles: Profiles;
}

/**
 * Between batches: false if the roll must stop (abort, budget, window); else wait while paused,
 * or (after the canary) for ops' approval, and true once batch `b` may start.
 */
export async function readyForBatch({ roll, locks }: RollRun, b: number): Promise<boolean> {
  const { cfg, progress } = roll;
  for (;;) {
    if (roll.stopReason()) return false;
    if (progress.paused) {
      locks.forgetListings(); // stale once the roll waited
      await locks.releaseKept(); // nobody waits behind a paused roll
      progress.status = 'paused';
      await waitFor(() => !progress.paused || !!roll.abortReason, roll.msToCutoff());
      continue;
    }
    if (b > 0 && !progress.canary.approved) {
      progress.status = 'waiting-for-approval';
      const limits = [
        cfg.canaryWaitSeconds === undefined ? undefined : cfg.canaryWaitSeconds * 1000,
        roll.msToCutoff(),
      ];
      const wait = limits.filter((x): x is number => x !== undefined);
      const woken = await waitFor(
        () => progress.canary.approved || progress.paused || !!roll.abortReason,
        wait.length ? Math.min(...wait) : undefined,
      );
      locks.forgetListings(); // stale once the roll waited
      if (!woken && !roll.stopReason()) progress.canary.approved = true; // canaryWaitSeconds ran out: go on
      continue;
    }
    return true;
  }
}

/**
 * One batch: its hosts' sites locked, every host's turn at once (host.ts), then the locks handed
 * over to the next batch or released. `first`: the listing made before it, if any.
 */
export async function runBatch(run: RollRun, batch: number, hosts: string[], first?: Listing): Promise<void> {
  const { roll, locks, profiles } = run;
  const { progress } = roll;
  for (const h of hosts) progress.hosts[h]!.state = 'waiting-for-locks';
  const held = await locks.lockSitesOf(hosts, first);
  if (!held) {
    for (const h of hosts)
      Object.assign(progress.hosts[h]!, {
        state: 'not-started',
        reason: roll.stopReason(),
        leftAs: 'untouched',
      });
    return;
  }
  try {
    const decisions = decide(hosts, held);
    preloadProfiles(decisions, held, profiles);
    await Promise.all(
      decisions.map(async (d) => {
        const outcome = await patchHost(
          {
            cfg: roll.cfg,
            rollId: progress.rollId,
            host: d.host,
            progress: progress.hosts[d.host]!,
            sites: held.byHost.get(d.host) ?? new Map(),
            profile: (name) => profiles.get(name),
            mayStart: () => roll.mayStart(d.host),
          },
          d,
        );
        if (outcome === 'failed') roll.refresh(); // the budget is checked by the next host's last look
      }),
    );
  } finally {
    const next = progress.batches[batch + 1]?.filter((h) => progress.hosts[h]!.state === 'pending');
    const goingOn = !!next?.length && progress.canary.approved && !roll.stopReason();
    await locks.handOver(held.locks, batch + 1, goingOn ? next : undefined);
  }
}

/** What each host does for each of its sites (plan.ts's rules), from what the batch locked. */
function decide(hosts: string[], held: LockedBatch): HostDecision[] {
  const sitesByHost: Record<string, SiteOnHost[]> = {};
  for (const h of hosts)
    sitesByHost[h] = [...(held.byHost.get(h) ?? new Map<string, LockedSite>()).values()].map((s) => ({
      siteId: s.siteId,
      appHosts: s.record.placement?.appHosts ?? [],
      routes: [...s.routes].map(([proxyHost, r]) => ({ proxyHost, mode: r.mode, backends: r.backends })),
    }));
  const decisions = decideBatch(hosts, sitesByHost);
  for (const d of decisions) {
    const unlocked = held.unlocked.get(d.host);
    if (unlocked?.length)
      d.heldBack = `sites appeared on it while it waited for their locks: ${unlocked.join(', ')}`;
  }
  return decisions;
}

/** The profiles of the sites taken out, loaded while the hosts drain (a failure surfaces where one is used). */
function preloadProfiles(decisions: HostDecision[], held: LockedBatch, profiles: Profiles): void {
  for (const d of decisions)
    for (const a of d.heldBack ? [] : d.actions) {
      const spec = held.byHost.get(d.host)?.get(a.siteId)?.record.spec;
      if (a.action !== 'none' && spec) profiles.get(spec.profile).catch(() => undefined);
    }
}
