import { CancellationScope, getExternalWorkflowHandle, workflowInfo } from '@temporalio/workflow';
import { localStep1m } from '../lib/activities';
import { acquireSiteLocks, joinHeldLocks, type HeldSiteLocks } from '../lib/siteLock';
import { releaseLockSignal, siteWorkflowId } from '../../protocol/site';
import {
  listSites,
  listSitesHolding,
  siteIdsIn,
  sitesUnderLocks,
  type Listing,
  type SitesUnderLocks,
} from './listing';
import { waitFor, type RollState } from './state';

const LOCK_OPERATION = 'patch';

/** A batch's sites, locked. */
export interface LockedBatch extends SitesUnderLocks {
  locks: HeldSiteLocks;
}

/**
 * The site locks of a roll, batch after batch. A batch locks every site with containers on its
 * hosts, in one sorted acquisition (no deadlock with deploys or backups). When it ends, it hands
 * over to the next batch the locks that batch needs and nobody else waits for, and the next
 * batch's listing is begun under them; the others are released. Everything still held is released
 * when the roll pauses, continues as new or ends.
 */
export class RollLocks {
  /** The planning's listing, for the first batch if it starts at once. */
  private planned: Listing | undefined;
  /** The next batch's listing, begun under the last batch's locks. */
  private prefetched: { batch: number; listing: Promise<Listing | undefined> } | undefined;
  /** Locks kept from the last batch for the next one, used or released there. */
  private kept: HeldSiteLocks | undefined;

  constructor(
    private readonly roll: RollState,
    planned?: Listing,
  ) {
    this.planned = planned;
  }

  /** The listing made before batch `b` (the planning's, or the one prefetched), if any: used once. */
  async listingFor(b: number): Promise<Listing | undefined> {
    const planned = b === 0 ? this.planned : undefined;
    this.planned = undefined;
    if (planned) return planned;
    const p = this.prefetched;
    this.prefetched = undefined;
    return p?.batch === b ? p.listing : undefined;
  }

  /** The listings made so far are stale once the roll waited (for ops). */
  forgetListings(): void {
    this.planned = this.prefetched = undefined;
  }

  async releaseKept(): Promise<void> {
    const k = this.kept;
    this.kept = undefined;
    await k?.release();
  }

  /** Nothing left running, nothing held: before continue-as-new (the next run lists and asks again). */
  async settle(): Promise<void> {
    await (this.prefetched?.listing ?? Promise.resolve());
    await this.releaseKept();
  }

  /**
   * Lock every site with containers on the batch's hosts (those the platform knows: a site
   * workflow exists), in one sorted acquisition. Gives up (undefined) if ops abort or the window
   * closes while waiting (a deploy may hold a lock for a while). The hosts are listed again once
   * the locks are held: a site that appeared meanwhile is not locked, and its host is held back.
   * `first`: a listing made just before (listingFor), instead of listing again. If the last batch
   * kept every lock this one needs, its listing and route reads were made under them: none is
   * made again.
   */
  async lockSitesOf(hosts: string[], first?: Listing): Promise<LockedBatch | undefined> {
    const { seen, known } = first
      ? { seen: first.seen.filter((s) => hosts.includes(s.host)), known: first.known }
      : await listSites(hosts);
    const ids = siteIdsIn(seen);
    const lockIds = ids.filter((id) => known[id]);
    const got = await this.acquireWithKept(lockIds, first);
    if (!got) return undefined;
    const { locks, listedUnderLocks } = got;
    try {
      return { ...(await sitesUnderLocks(hosts, ids, locks, listedUnderLocks ? first : undefined)), locks };
    } catch (err) {
      await locks.release();
      throw err;
    }
  }

  /**
   * The batch is over: keep for the next one (`nextHosts`, or none if the roll does not go on)
   * the locks it needs that no other operation waits for, and begin its listing under them;
   * release the others.
   */
  async handOver(held: HeldSiteLocks, nextBatch: number, nextHosts: string[] | undefined): Promise<void> {
    if (!nextHosts) return held.release();
    // the next batch's listing (and the routes of the sites it keeps), and which of these locks
    // it needs that nobody else waits for
    const wanted = this.sitesFor(nextHosts, held);
    this.prefetched = {
      batch: nextBatch,
      listing: listSitesHolding(nextHosts, held, wanted).catch(() => undefined),
    };
    this.kept = await this.keepFor(wanted, held);
  }

  /**
   * The locks of `lockIds`: those the last batch kept stay held, as long as they sort before
   * every lock still to ask for (locks are asked for in sorted order: no deadlock); the others
   * are released, the missing ones asked for. `listedUnderLocks`: `first` was listed (and its
   * routes read) while every lock this batch needs was held, so nothing is to be read again.
   */
  private async acquireWithKept(
    lockIds: string[],
    first: Listing | undefined,
  ): Promise<{ locks: HeldSiteLocks; listedUnderLocks: boolean } | undefined> {
    const carriedOver = this.kept;
    this.kept = undefined;
    if (!carriedOver) {
      const locks = await this.acquireUnlessStopped(lockIds);
      return locks && { locks, listedUnderLocks: false };
    }
    const has = (id: string) => carriedOver.locks.some((l) => l.siteId === id);
    const firstMissing = lockIds.find((id) => !has(id));
    await carriedOver.keepOnly(lockIds.filter((id) => has(id) && (!firstMissing || id < firstMissing)));
    const more = lockIds.filter((id) => !has(id));
    const listedUnderLocks =
      !more.length && !!first?.held && lockIds.every((id) => first.held!.siteIds.includes(id));
    const got = more.length ? await this.acquireUnlessStopped(more) : carriedOver;
    if (!got) {
      await carriedOver.release();
      return undefined;
    }
    return { locks: got === carriedOver ? got : joinHeldLocks(carriedOver, got), listedUnderLocks };
  }

  /** The held sites with containers on the next batch's hosts (by their records: locked, so current). */
  private sitesFor(next: string[], held: HeldSiteLocks): string[] {
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
  private async keepFor(wanted: string[], held: HeldSiteLocks): Promise<HeldSiteLocks | undefined> {
    const waiting = wanted.length
      ? await localStep1m.siteLockWaiters({ siteIds: wanted }).catch(() => ({}) as Record<string, number>)
      : {};
    const keep = wanted.filter((id) => waiting[id] === 0);
    await held.keepOnly(keep);
    return held.locks.length ? held : undefined;
  }

  /** acquireSiteLocks, given up if ops abort or the window closes while waiting (undefined then). */
  private async acquireUnlessStopped(siteIds: string[]): Promise<HeldSiteLocks | undefined> {
    const { roll } = this;
    if (!siteIds.length) return { locks: [], release: async () => {}, keepOnly: async () => {} };
    let got: HeldSiteLocks | undefined;
    let error: unknown;
    const scope = new CancellationScope();
    const attempt = scope
      .run(() => acquireSiteLocks(siteIds, LOCK_OPERATION, roll.progress, localStep1m.requestSiteLock))
      .then(
        (l) => (got = l),
        (e: unknown) => (error = e ?? new Error('lock acquisition failed')),
      );
    await waitFor(() => got !== undefined || error !== undefined || !!roll.abortReason, roll.msToCutoff());
    if (got) return got;
    if (error) throw error;
    // aborted, or the window closed while waiting: withdraw from every site's queue
    scope.cancel();
    await attempt;
    roll.progress.waitingForLock = false;
    await CancellationScope.nonCancellable(async () => {
      if (got) await got.release();
      const { workflowId, runId } = workflowInfo();
      const holder = { workflowId, runId, operation: LOCK_OPERATION };
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
