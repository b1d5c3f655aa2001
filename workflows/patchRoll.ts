import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  FINAL_HOST_STATES,
  patchProgressQuery,
  PatchRollInput,
  pauseSignal,
  pauseUpdate,
  resolveCount,
  resumeSignal,
  resumeUpdate,
  skipHostSignal,
  skipHostUpdate,
  type AbortRequest,
  type HostState,
  type PatchRollProgress,
  type PatchRollResult,
} from '../protocol/patchRoll';
import { Hosts, Operation, TriggeredBy } from '../protocol/searchAttributes';
import { releaseLockSignal, siteWorkflowId } from '../protocol/site';
import type { Profile } from '../schema/profile';
import type { Route } from '../schema/route';
import type { SiteRecord } from '../schema/site';
import { quick } from './lib/activities';
import { local } from './lib/patchActivities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { HANDOVER, patchHost, type LockedSite } from './lib/patchHost';
import { decideBatch, planBatches, selectHosts, type SiteOnHost } from './lib/patchPlan';
import { acquireSiteLocks, joinHeldLocks, type HeldSiteLocks } from './lib/siteLock';

/** State carried over by continue-as-new (between batches, when the history grows long). */
export interface PatchRollCarried {
  progress: PatchRollProgress;
  nextBatch: number;
}

const LOCK_OPERATION = 'patch';

/**
 * patched() id of the shorter chain per batch: the first batch reuses the planning's listing, the
 * route reads and the listing under the locks run at once, and the profiles are loaded once per
 * run, while the hosts are being drained. Runs recorded before it replay the old chain.
 */
const PIPELINED = 'patch-roll-pipelined';

/**
 * patched() id of locks kept from one batch to the next: a site of the next batch whose lock
 * nobody else waits for keeps its lock instead of releasing it and asking again (a release, a
 * request and a grant between the site's workflow and the roll, per site and batch). An operation
 * that starts waiting meanwhile gets the lock after that one batch; a roll that pauses, waits for
 * approval, stops or continues as new releases first. Runs recorded before it replay without.
 */
const KEEP_LOCKS = 'patch-roll-keep-locks';

type SiteContainersOnHost = Awaited<ReturnType<typeof local.hostSites>>[number];

/** Which sites have containers on each host, and the records of those sites (before the locks). */
interface Listing {
  seen: { host: string; sites: SiteContainersOnHost[] }[];
  known: Record<string, SiteRecord | null>;
  /** KEEP_LOCKS: the sites whose locks were held while this was listed, and their routes then. */
  held?: { siteIds: string[]; routes: Map<string, Map<string, Route>> };
}

/** A site's stored route on each of its proxy hosts, read at once (those that have one). */
async function readRoutesAtOnce(r: SiteRecord): Promise<Map<string, Route>> {
  const m = new Map<string, Route>();
  const found = await Promise.all(
    r.placement!.proxyHosts.map((proxyHost) => local.readSiteRoute({ host: proxyHost, siteId: r.siteId })),
  );
  r.placement!.proxyHosts.forEach((proxyHost, i) => found[i] && m.set(proxyHost, found[i]));
  return m;
}

/** Sites whose routes a batch reads and changes: active, placed, with a spec. */
const routable = (r: SiteRecord) => r.state === 'active' && !!r.placement && !!r.spec;

/** condition() with an optional timeout: true if `fn` came true, false if the time ran out. */
async function waitFor(fn: () => boolean, timeoutMs: number | undefined): Promise<boolean> {
  if (timeoutMs === undefined) {
    await condition(fn);
    return true;
  }
  return condition(fn, timeoutMs);
}

/**
 * Patch the OS of a set of hosts, batch after batch, without taking any site down:
 *   select the hosts → find the sites on each (their containers' qm.site labels) and where those
 *   sites run (their records) → plan batches (a site with several app servers never has all of
 *   them out at once) → canary: the first host alone, then wait for ops' `approve` → each batch:
 *   lock its hosts' sites (sorted: no deadlock with deploys or backups) → every host at once runs
 *   its turn (lib/patchHost.ts: drain or maintenance page → patch → reboot → containers → checks
 *   → readmit) → release → the next batch, unless the error budget is spent, ops aborted, or the
 *   maintenance window closed.
 * Ops steer it while it runs (Updates or Signals: approve, pause, resume, abort, skipHost) and
 * watch it through the `progress` query and the search attributes Operation=patch-roll and Hosts.
 * A host that fails stays out of rotation and is reported; the roll itself never fails because a
 * host did: its result says which hosts are done, failed, skipped, held back or not started.
 */
export async function patchRoll(input: PatchRollInput, carried?: PatchRollCarried): Promise<PatchRollResult> {
  const cfg = parseWorkflowInput(PatchRollInput, input, 'patchRoll input');
  const info = workflowInfo();
  const progress: PatchRollProgress = carried?.progress ?? {
    operation: 'patch-roll',
    rollId: info.firstExecutionRunId,
    status: 'planning',
    paused: false,
    waitingForLock: false,
    batches: [],
    currentBatch: 0,
    done: [],
    failed: [],
    remaining: [],
    skipped: [],
    heldBack: [],
    notStarted: [],
    errorBudget: { allowed: 0, used: 0 },
    canary: { approved: !cfg.canary },
    hosts: {},
  };
  const cutoff = cfg.window ? Date.parse(cfg.window.notAfter) : undefined;
  /** Hosts of the running batch that ops skipped before their patch started. */
  const skipRequested = new Set<string>();
  let abortReason: string | undefined;
  let batchRunning = false;
  /** The planning's listing, for the first batch if it starts at once (PIPELINED). */
  let planningListing: Listing | undefined;
  /** The next batch's listing, begun as the last batch released its locks (HANDOVER). */
  let prefetched: { batch: number; listing: Promise<Listing | undefined> } | undefined;
  /** Locks kept from the last batch for the next one (KEEP_LOCKS), used or released there. */
  let kept: HeldSiteLocks | undefined;
  const releaseKept = async () => {
    const k = kept;
    kept = undefined;
    await k?.release();
  };
  /** Profiles by name, loaded once per run (PIPELINED). */
  const runProfiles = new Map<string, Promise<Profile>>();

  const finished = () => ['completed', 'stopped', 'aborted'].includes(progress.status);
  const windowClosed = () => cutoff !== undefined && Date.now() >= cutoff;
  const msToCutoff = () => (cutoff === undefined ? undefined : Math.max(0, cutoff - Date.now()));
  const budgetSpent = () => progress.errorBudget.used > progress.errorBudget.allowed;
  const refresh = () => {
    const by = (s: HostState) => Object.keys(progress.hosts).filter((h) => progress.hosts[h]!.state === s);
    progress.done = by('done');
    progress.failed = by('failed');
    progress.skipped = by('skipped');
    progress.heldBack = by('held-back');
    progress.notStarted = by('not-started');
    progress.remaining = Object.keys(progress.hosts).filter(
      (h) => !FINAL_HOST_STATES.includes(progress.hosts[h]!.state),
    );
    progress.errorBudget.used = progress.failed.length;
  };

  // ---- ops controls: each an Update (validated: a refusal says why) and a Signal of the same name
  const refuse = (why: string) => {
    throw new Error(why);
  };
  const controls = {
    approve: {
      validate: () => {
        if (finished()) refuse(`the roll is ${progress.status}`);
        if (progress.canary.approved) refuse('already approved (or no canary)');
      },
      run: () => {
        progress.canary.approved = true;
        return progress.status;
      },
    },
    pause: {
      validate: () => {
        if (finished() || abortReason) refuse(`the roll is ${abortReason ? 'aborting' : progress.status}`);
        if (progress.paused) refuse('already paused');
      },
      run: () => {
        progress.paused = true;
        return progress.status;
      },
    },
    resume: {
      validate: () => {
        if (!progress.paused) refuse('not paused');
      },
      run: () => {
        progress.paused = false;
        return progress.status;
      },
    },
    abort: {
      validate: (_o: AbortRequest) => {
        if (finished()) refuse(`the roll is ${progress.status}`);
        if (abortReason) refuse('already aborting');
      },
      run: (o: AbortRequest) => {
        abortReason = `aborted by ops${o?.reason ? `: ${o.reason.slice(0, 200)}` : ''}`;
        progress.stopReason = abortReason;
        return progress.status;
      },
    },
    skipHost: {
      validate: (o: { host: string }) => {
        const hp = progress.hosts[o?.host];
        if (!hp) refuse(`${o?.host} is not in this roll`);
        else if (!['pending', 'waiting-for-locks', 'draining'].includes(hp.state))
          refuse(`${o.host} is ${hp.state}: only a host whose patch has not started can be skipped`);
      },
      run: (o: { host: string }): HostState => {
        const hp = progress.hosts[o.host]!;
        if (
          hp.state === 'pending' &&
          !(batchRunning && progress.batches[progress.currentBatch - 1]?.includes(o.host))
        ) {
          hp.state = 'skipped';
          hp.reason = 'skipped by ops';
          hp.leftAs = 'untouched';
          refresh();
        } else skipRequested.add(o.host);
        return hp.state;
      },
    },
  };
  setHandler(patchProgressQuery, () => progress);
  setHandler(approveUpdate, controls.approve.run, { validator: controls.approve.validate });
  setHandler(pauseUpdate, controls.pause.run, { validator: controls.pause.validate });
  setHandler(resumeUpdate, controls.resume.run, { validator: controls.resume.validate });
  setHandler(abortUpdate, controls.abort.run, { validator: controls.abort.validate });
  setHandler(skipHostUpdate, controls.skipHost.run, { validator: controls.skipHost.validate });
  const asSignal =
    <A extends unknown[]>(c: { validate: (...a: A) => void; run: (...a: A) => unknown }) =>
    (...a: A) => {
      try {
        c.validate(...a);
      } catch {
        return; // a signal that does not apply is ignored (the Update says why)
      }
      c.run(...a);
    };
  setHandler(approveSignal, asSignal(controls.approve));
  setHandler(pauseSignal, asSignal(controls.pause));
  setHandler(resumeSignal, asSignal(controls.resume));
  setHandler(abortSignal, asSignal(controls.abort));
  setHandler(skipHostSignal, asSignal(controls.skipHost));

  upsertSearchAttributes([
    { key: Operation, value: 'patch-roll' },
    { key: TriggeredBy, value: cfg.triggeredBy ?? 'ui' },
  ]);

  // ---- select and plan (once: a continued run carries the plan)
  if (!carried) {
    const inventory = await local.listHosts();
    const { hosts, unknown } = selectHosts(inventory, cfg.hosts);
    if (unknown.length)
      throw ApplicationFailure.create({
        type: 'InvalidInput',
        message: `invalid patchRoll input: hosts.names: not in the inventory: ${unknown.join(', ')}`,
        nonRetryable: true,
      });
    for (const h of hosts) progress.hosts[h] = { state: 'pending', batch: 0, sites: [] };
    upsertSearchAttributes([{ key: Hosts, value: hosts }]);
    progress.errorBudget.allowed = resolveCount(cfg.errorBudget, hosts.length, 'down');

    const found = await Promise.all(
      hosts.map((host) =>
        local.hostSites({ host }).then(
          (sites) => ({ host, sites }),
          (err: unknown) => {
            Object.assign(progress.hosts[host]!, {
              state: 'failed',
              reason: `could not list its containers: ${rootMessage(err)}`,
              leftAs: 'untouched',
            });
            return { host, sites: [] };
          },
        ),
      ),
    );
    const siteIds = [...new Set(found.flatMap((f) => f.sites.map((s) => s.siteId)))].sort();
    const records = siteIds.length ? await local.readSiteRecords({ siteIds }) : {};
    planningListing = { seen: found, known: records };
    const siteAppHosts: Record<string, string[]> = {};
    for (const [siteId, record] of Object.entries(records))
      if (record?.placement && record.state !== 'deleted') siteAppHosts[siteId] = record.placement.appHosts;
    const planned = hosts.filter((h) => progress.hosts[h]!.state === 'pending');
    progress.batches = planBatches(
      planned,
      siteAppHosts,
      resolveCount(cfg.batchSize, hosts.length, 'up'),
      cfg.canary,
    );
    progress.batches.forEach((b, i) => b.forEach((h) => (progress.hosts[h]!.batch = i + 1)));
    progress.canary.host = cfg.canary ? progress.batches[0]?.[0] : undefined;
    refresh();
  }
  upsertMemo({
    summary:
      `patch roll of ${Object.keys(progress.hosts).length} host(s) in ${progress.batches.length} batch(es)` +
      (cfg.window ? `, not after ${cfg.window.notAfter}` : ''),
  });

  // ---- the batches
  const stopReason = (): string | undefined =>
    abortReason ??
    (budgetSpent()
      ? `error budget spent: ${progress.errorBudget.used} host(s) failed, ${progress.errorBudget.allowed} allowed`
      : windowClosed()
        ? `the maintenance window closed at ${cfg.window!.notAfter}`
        : undefined);

  const pipelined = patched(PIPELINED);
  try {
    batches: for (let b = carried?.nextBatch ?? 0; b < progress.batches.length; b++) {
      // between batches: stop, or wait while paused, or (after the canary) for ops' approval
      for (;;) {
        if (stopReason()) break batches;
        if (progress.paused) {
          planningListing = prefetched = undefined; // stale once the roll waited
          await releaseKept(); // nobody waits behind a paused roll
          progress.status = 'paused';
          await waitFor(() => !progress.paused || !!abortReason, msToCutoff());
          continue;
        }
        if (b > 0 && !progress.canary.approved) {
          progress.status = 'waiting-for-approval';
          const limits = [cfg.canaryWaitSeconds, undefined].map((s) =>
            s === undefined ? undefined : s * 1000,
          );
          const wait = [limits[0], msToCutoff()].filter((x): x is number => x !== undefined);
          const woken = await waitFor(
            () => progress.canary.approved || progress.paused || !!abortReason,
            wait.length ? Math.min(...wait) : undefined,
          );
          prefetched = undefined; // stale once the roll waited
          if (!woken && !stopReason()) progress.canary.approved = true; // canaryWaitSeconds ran out: go on
          continue;
        }
        break;
      }
      progress.status = 'running';
      progress.currentBatch = b + 1;
      const hosts = progress.batches[b]!.filter((h) => progress.hosts[h]!.state === 'pending');
      batchRunning = true;
      try {
        let first = pipelined && b === 0 ? planningListing : undefined;
        planningListing = undefined;
        if (!first) first = await takePrefetched(b);
        await runBatch(b, hosts, first);
      } finally {
        batchRunning = false;
        skipRequested.clear();
        refresh();
      }
      if (b + 1 < progress.batches.length && workflowInfo().continueAsNewSuggested) {
        await pendingListing(); // nothing left running; the next run lists again
        await releaseKept(); // held by this run: the next run asks again
        await condition(allHandlersFinished);
        await continueAsNew<typeof patchRoll>(input, { progress, nextBatch: b + 1 });
      }
    }
  } finally {
    await releaseKept();
  }

  const why = stopReason();
  let cut = 0;
  for (const hp of Object.values(progress.hosts))
    if (hp.state === 'pending') {
      Object.assign(hp, { state: 'not-started', reason: why, leftAs: 'untouched' });
      cut++;
    }
  refresh();
  progress.status = abortReason ? 'aborted' : cut > 0 || budgetSpent() ? 'stopped' : 'completed';
  progress.stopReason = progress.status === 'completed' ? undefined : why;
  await condition(allHandlersFinished);
  const { rollId, status, done, failed, skipped, heldBack, notStarted, hosts } = progress;
  return {
    rollId,
    status,
    stopReason: progress.stopReason,
    done,
    failed,
    skipped,
    heldBack,
    notStarted,
    hosts,
  };

  /** One batch: its sites locked, its hosts' turns at once, the locks released. */
  async function runBatch(batch: number, hosts: string[], first?: Listing): Promise<void> {
    for (const h of hosts) progress.hosts[h]!.state = 'waiting-for-locks';
    const held = await lockSitesOf(hosts, first);
    if (!held) {
      for (const h of hosts)
        Object.assign(progress.hosts[h]!, {
          state: 'not-started',
          reason: stopReason(),
          leftAs: 'untouched',
        });
      return;
    }
    try {
      const profiles = pipelined ? runProfiles : new Map<string, Promise<Profile>>();
      const profile = (name: string) => {
        if (!profiles.has(name)) {
          const p = quick.loadProfile({ name });
          profiles.set(name, p);
          // kept for the run only once loaded: a later batch asks again after a failure
          if (pipelined) p.catch(() => profiles.get(name) === p && profiles.delete(name));
        }
        return profiles.get(name)!;
      };
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
      if (pipelined)
        for (const d of decisions)
          for (const a of d.heldBack ? [] : d.actions) {
            const spec = held.byHost.get(d.host)?.get(a.siteId)?.record.spec;
            // loaded while the hosts drain; a failure surfaces where the profile is used
            if (a.action !== 'none' && spec) profile(spec.profile).catch(() => undefined);
          }
      await Promise.all(
        decisions.map(async (d) => {
          const outcome = await patchHost(
            {
              cfg,
              rollId: progress.rollId,
              host: d.host,
              progress: progress.hosts[d.host]!,
              sites: held.byHost.get(d.host) ?? new Map(),
              profile,
              mayStart: () => {
                if (skipRequested.has(d.host)) return { state: 'skipped', reason: 'skipped by ops' };
                const why = stopReason();
                if (!why) return undefined;
                // 'finish-batch': a batch that has started runs to its end, even past the window
                if (!abortReason && !budgetSpent() && cfg.window?.atCutoff === 'finish-batch')
                  return undefined;
                return { state: 'not-started', reason: why };
              },
            },
            d,
          );
          if (outcome === 'failed') refresh(); // the budget is checked by the next host's last look
        }),
      );
    } finally {
      const next = progress.batches[batch + 1]?.filter((h) => progress.hosts[h]!.state === 'pending');
      const goingOn = !!next?.length && progress.canary.approved && !stopReason();
      if (goingOn && patched(KEEP_LOCKS)) {
        // the next batch's listing (and the routes of the sites it keeps), and which of these
        // locks it needs that nobody else waits for
        const wanted = sitesFor(next, held.locks);
        prefetched = {
          batch: batch + 1,
          listing: listSitesHolding(next, held.locks, wanted).catch(() => undefined),
        };
        kept = await keepFor(wanted, held.locks);
      } else {
        const releasing = held.locks.release();
        // the next batch's listing, taken while these locks go (used only if it starts at once)
        if (goingOn && patched(HANDOVER))
          prefetched = {
            batch: batch + 1,
            // a failed listing is made again (and fails there, where it is reported)
            listing: listSites(next).catch(() => undefined),
          };
        await releasing;
      }
    }
  }

  /** The held sites with containers on the next batch's hosts (by their records: locked, so current). */
  function sitesFor(next: string[], held: HeldSiteLocks): string[] {
    return held.locks
      .filter((l) => {
        const p = l.record.placement;
        return !!p && [...p.appHosts, p.cacheHost].some((h) => next.includes(h));
      })
      .map((l) => l.siteId);
  }

  /**
   * Keep the locks of `wanted` that no other operation waits for; release the others. What the
   * next batch really needs is settled in lockSitesOf, from its listing.
   */
  async function keepFor(wanted: string[], held: HeldSiteLocks): Promise<HeldSiteLocks | undefined> {
    const waiting = wanted.length
      ? await local.siteLockWaiters({ siteIds: wanted }).catch(() => ({}) as Record<string, number>)
      : {};
    const keep = wanted.filter((id) => waiting[id] === 0);
    await held.keepOnly(keep);
    return held.locks.length ? held : undefined;
  }

  /**
   * Lock every site with containers on the batch's hosts (those the platform knows: a site
   * workflow exists), in one sorted acquisition. Gives up if ops abort or the window closes while
   * waiting (a deploy may hold a lock for a while). The hosts are listed again once the locks are
   * held: a site that appeared meanwhile is not locked, and its host is held back. `first`: a
   * listing made just before (the planning's for the first batch, or the one taken while the
   * last batch released its locks), instead of listing again. If the last batch kept every lock
   * this one needs (KEEP_LOCKS), its listing and route reads were made under them: none is made
   * again.
   */
  async function lockSitesOf(hosts: string[], first?: Listing) {
    let seen: Listing['seen'];
    let known: Listing['known'];
    if (first) {
      seen = first.seen.filter((s) => hosts.includes(s.host));
      known = first.known;
    } else ({ seen, known } = await listSites(hosts));
    const ids = [...new Set(seen.flatMap((s) => s.sites.map((x) => x.siteId)))].sort();
    const lockIds = ids.filter((id) => known[id]);
    // the locks the last batch kept: those this batch needs stay held, as long as they sort
    // before every lock still to ask for (locks are asked for in sorted order: no deadlock)
    let locks: HeldSiteLocks | undefined;
    /** Listed (and routes read) while every lock it needs was held: nothing to read again. */
    let listedUnderLocks = false;
    const carriedOver = kept;
    kept = undefined;
    if (carriedOver) {
      const has = (id: string) => carriedOver.locks.some((l) => l.siteId === id);
      const firstMissing = lockIds.find((id) => !has(id));
      await carriedOver.keepOnly(lockIds.filter((id) => has(id) && (!firstMissing || id < firstMissing)));
      const more = lockIds.filter((id) => !has(id));
      listedUnderLocks =
        !more.length && !!first?.held && lockIds.every((id) => first.held!.siteIds.includes(id));
      const got = more.length ? await acquireUnlessStopped(more) : carriedOver;
      if (!got) await carriedOver.release();
      else locks = got === carriedOver ? got : joinHeldLocks(carriedOver, got);
    } else locks = await acquireUnlessStopped(lockIds);
    if (!locks) return undefined;
    try {
      const records = new Map<string, SiteRecord>(locks.locks.map((l) => [l.siteId, l.record]));
      const routes = new Map<string, Map<string, Route>>();
      const toRead = listedUnderLocks ? [] : [...records.values()].filter(routable);
      if (listedUnderLocks) for (const [id, m] of first!.held!.routes) if (records.has(id)) routes.set(id, m);
      const readRoutes = Promise.all(
        toRead.map(async (r) => {
          let m = new Map<string, Route>();
          if (pipelined) m = await readRoutesAtOnce(r);
          else
            for (const proxyHost of r.placement!.proxyHosts) {
              const route = await local.readSiteRoute({ host: proxyHost, siteId: r.siteId });
              if (route) m.set(proxyHost, route);
            }
          routes.set(r.siteId, m);
        }),
      );
      const byHost = new Map<string, Map<string, LockedSite>>();
      const unlocked = new Map<string, string[]>();
      let again: SiteContainersOnHost[][];
      if (listedUnderLocks) again = hosts.map((h) => first!.seen.find((x) => x.host === h)?.sites ?? []);
      else if (pipelined)
        [again] = await Promise.all([
          Promise.all(hosts.map((host) => local.hostSites({ host }))),
          readRoutes,
        ]);
      else {
        await readRoutes;
        again = await Promise.all(hosts.map((host) => local.hostSites({ host })));
      }
      for (const [i, host] of hosts.entries()) {
        const now = again[i]!;
        const mine = new Map<string, LockedSite>();
        for (const s of now) {
          const record = records.get(s.siteId);
          if (!record) {
            // new since the first look: not locked, so the host must not be taken out
            if (!ids.includes(s.siteId)) unlocked.set(host, [...(unlocked.get(host) ?? []), s.siteId]);
            continue; // containers with no site workflow: not the platform's, left alone
          }
          mine.set(s.siteId, {
            siteId: s.siteId,
            record,
            routes: routes.get(s.siteId) ?? new Map(),
            ranHere: s.containers.some((c) => c.state === 'running'),
            rolesHere: s.roles,
          });
        }
        byHost.set(host, mine);
      }
      return { byHost, unlocked, locks };
    } catch (err) {
      await locks.release();
      throw err;
    }
  }

  /** The listing prefetched for batch `b`, if any (it is used once). */
  async function takePrefetched(b: number): Promise<Listing | undefined> {
    const p = prefetched;
    prefetched = undefined;
    return p?.batch === b ? p.listing : undefined;
  }

  function pendingListing(): Promise<unknown> {
    return prefetched?.listing ?? Promise.resolve();
  }

  /**
   * listSites while holding locks: the records of held sites are the locks' (no query), and the
   * routes of `wanted` are read beside the hosts' listing. If the next batch keeps every lock it
   * needs, this listing was made under them, and lockSitesOf reads nothing again.
   */
  async function listSitesHolding(hosts: string[], held: HeldSiteLocks, wanted: string[]): Promise<Listing> {
    const records = new Map(held.locks.map((l) => [l.siteId, l.record]));
    const routes = new Map<string, Map<string, Route>>();
    const [seen] = await Promise.all([
      Promise.all(hosts.map(async (host) => ({ host, sites: await local.hostSites({ host }) }))),
      Promise.all(
        wanted
          .map((id) => records.get(id)!)
          .filter(routable)
          .map(async (r) => routes.set(r.siteId, await readRoutesAtOnce(r))),
      ),
    ]);
    const siteIds = [...new Set(seen.flatMap((s) => s.sites.map((x) => x.siteId)))].sort();
    const others = siteIds.filter((id) => !records.has(id));
    const known: Listing['known'] = others.length ? await local.readSiteRecords({ siteIds: others }) : {};
    for (const id of siteIds) if (records.has(id)) known[id] = records.get(id)!;
    return { seen, known, held: { siteIds: wanted, routes } };
  }

  /** Which sites have containers on the hosts, and their records. */
  async function listSites(hosts: string[]): Promise<Listing> {
    const seen = await Promise.all(
      hosts.map(async (host) => ({ host, sites: await local.hostSites({ host }) })),
    );
    const siteIds = [...new Set(seen.flatMap((s) => s.sites.map((x) => x.siteId)))].sort();
    const known = siteIds.length ? await local.readSiteRecords({ siteIds }) : {};
    return { seen, known };
  }

  async function acquireUnlessStopped(siteIds: string[]) {
    if (!siteIds.length) return { locks: [], release: async () => {}, keepOnly: async () => {} };
    let got: Awaited<ReturnType<typeof acquireSiteLocks>> | undefined;
    let error: unknown;
    const scope = new CancellationScope();
    const attempt = scope
      .run(() =>
        acquireSiteLocks(
          siteIds,
          LOCK_OPERATION,
          progress,
          patched(HANDOVER) ? local.requestSiteLock : undefined,
        ),
      )
      .then(
        (l) => (got = l),
        (e: unknown) => (error = e ?? new Error('lock acquisition failed')),
      );
    await waitFor(() => got !== undefined || error !== undefined || !!abortReason, msToCutoff());
    if (got) return got;
    if (error) throw error;
    // aborted, or the window closed while waiting: withdraw from every site's queue
    scope.cancel();
    await attempt;
    progress.waitingForLock = false;
    await CancellationScope.nonCancellable(async () => {
      if (got) await got.release();
      const holder = { workflowId: info.workflowId, runId: info.runId, operation: LOCK_OPERATION };
      // a request still queued in a site workflow (acquireSiteLocks releases only granted locks)
      await Promise.all(
        siteIds.map((id) =>
          getExternalWorkflowHandle(siteWorkflowId(id))
            .signal(releaseLockSignal, holder)
            .catch(() => undefined),
        ),
      );
    });
    return undefined;
  }
}
