import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SiteRecord } from '../../schema/site';
import {
  lockGrantedSignal,
  releaseLockSignal,
  siteWorkflowId,
  updateRecordSignal,
  type LockHolder,
} from '../../protocol/site';
import type { OperationProgress } from '../../protocol/operations';
import { lockRequest30s } from './activities';
import { operationFailure } from './operation';

const { requestSiteLock } = lockRequest30s;

export interface SiteLock {
  siteId: string;
  /** The site's record as it stood when the lock was granted. */
  record: SiteRecord;
  /** Change the site's record (durably, in the site's workflow). */
  update(patch: Partial<SiteRecord>): Promise<void>;
}

/**
 * Grants that arrived, by site: one signal handler per workflow serves every lock it waits for
 * (a patch roll waits for several at once). Kept on globalThis, which Temporal isolates per
 * workflow execution (module-level variables could be shared between workflows in one context).
 */
function grants(): Map<string, SiteRecord> {
  const g = globalThis as { __qmSiteGrants?: Map<string, SiteRecord> };
  if (!g.__qmSiteGrants) {
    const map = new Map<string, SiteRecord>();
    g.__qmSiteGrants = map;
    setHandler(lockGrantedSignal, (record) => {
      if (!map.has(record.siteId)) map.set(record.siteId, record);
    });
  }
  return g.__qmSiteGrants;
}

/** Locks held together; `locks` shrinks as they are released. */
export interface HeldSiteLocks {
  locks: SiteLock[];
  /** Release every lock still held (in reverse order of acquisition). */
  release(): Promise<void>;
  /** Release every lock but those of `siteIds`, which stay held (and in `locks`). */
  keepOnly(siteIds: string[]): Promise<void>;
}

/** Locks held in two acquisitions as one: `first` was taken before `then` (released after it). */
export function joinHeldLocks(first: HeldSiteLocks, then: HeldSiteLocks): HeldSiteLocks {
  return {
    get locks() {
      return [...first.locks, ...then.locks];
    },
    release: async () => {
      await then.release();
      await first.release();
    },
    keepOnly: async (siteIds) => {
      await then.keepOnly(siteIds);
      await first.keepOnly(siteIds);
    },
  };
}

/**
 * Hold the locks of several sites at once (a patch roll takes those of every site on a host):
 * asked for in sorted order, so two workflows that both need A and B can never deadlock.
 */
export async function acquireSiteLocks(
  siteIds: string[],
  operation: string,
  status: { waitingForLock: boolean },
  /** How to ask for a lock: an ordinary activity unless the caller runs it as a local one. */
  request: typeof requestSiteLock = requestSiteLock,
): Promise<HeldSiteLocks> {
  const info = workflowInfo();
  const holder: LockHolder = { workflowId: info.workflowId, runId: info.runId, operation };
  const granted = grants();
  const locks: SiteLock[] = [];
  const releaseWhere = async (drop: (lock: SiteLock) => boolean) => {
    await CancellationScope.nonCancellable(async () => {
      const going = locks.filter(drop);
      locks.splice(0, locks.length, ...locks.filter((l) => !drop(l)));
      for (const lock of going.reverse()) {
        granted.delete(lock.siteId);
        await getExternalWorkflowHandle(siteWorkflowId(lock.siteId)).signal(releaseLockSignal, holder);
      }
    });
  };
  const release = () => releaseWhere(() => true);
  const keepOnly = (siteIds: string[]) => releaseWhere((l) => !siteIds.includes(l.siteId));
  let waitingFor: string | undefined;
  try {
    for (const siteId of [...new Set(siteIds)].sort()) {
      status.waitingForLock = true;
      waitingFor = siteId;
      await request({ siteId, holder });
      await condition(() => granted.has(siteId));
      status.waitingForLock = false;
      const siteWorkflow = getExternalWorkflowHandle(siteWorkflowId(siteId));
      locks.push({
        siteId,
        record: granted.get(siteId)!,
        update: async (patch) => {
          await siteWorkflow.signal(updateRecordSignal, {
            holder,
            patch: { ...patch, lastOperation: info.workflowId },
          });
        },
      });
    }
  } catch (err) {
    // cancelled or failed while queued: leave the queue too, not only the locks already held
    if (waitingFor && !locks.some((l) => l.siteId === waitingFor)) {
      const site = waitingFor;
      await CancellationScope.nonCancellable(
        () =>
          getExternalWorkflowHandle(siteWorkflowId(site))
            .signal(releaseLockSignal, holder)
            .catch(() => undefined), // the site workflow may never have started
      );
    }
    await release();
    throw err;
  }
  return { locks, release, keepOnly };
}

/**
 * Run an operation's `body` holding the site's lock: wait (visibly, in the site workflow's queue)
 * until every earlier operation on the site has finished, run, then release — in a
 * non-cancellable scope, so a failed or cancelled operation never keeps the site locked. A failure
 * that escapes fails the operation naming its root cause, step and host (operationFailure).
 */
export async function withSiteLock<T>(
  siteId: string,
  operation: string,
  progress: OperationProgress,
  body: (lock: SiteLock) => Promise<T>,
): Promise<T> {
  try {
    const { locks, release } = await acquireSiteLocks([siteId], operation, progress);
    try {
      return await body(locks[0]!);
    } finally {
      await release();
    }
  } catch (err) {
    throw operationFailure(progress, err);
  }
}
