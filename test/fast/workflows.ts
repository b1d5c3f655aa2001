import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import type { OperationProgress } from '../../protocol/operations';
import type { SiteRecord } from '../../schema/site';
import { withSiteLock } from '../../workflows/lib/siteLock';

/**
 * The bundle the fast tests' workers run: every workflow of the platform, and one test-only
 * operation that holds a site's lock (as a deploy or a backup would) until the test says so.
 */
export * from '../../workflows';

export const finishSignal = defineSignal('finish');
export interface HeldOperationStatus extends OperationProgress {
  /** The record the lock grant carried, once granted. */
  granted?: SiteRecord;
}
export const heldOperationQuery = defineQuery<HeldOperationStatus>('heldOperation');

/**
 * Wait for the site's lock like any operation (lib/siteLock.ts, the site workflow's queue), hold
 * it until `finish`, release it. Cancelled while queued, it leaves the queue (siteLock's own path).
 */
export async function heldOperation(input: { siteId: string; operation: string }): Promise<SiteRecord> {
  const status: HeldOperationStatus = {
    operation: input.operation,
    siteId: input.siteId,
    waitingForLock: false,
    step: 'held',
    done: [],
    hosts: {},
  };
  let finish = false;
  setHandler(finishSignal, () => void (finish = true));
  setHandler(heldOperationQuery, () => status);
  return withSiteLock(input.siteId, input.operation, status, async (lock) => {
    status.granted = lock.record;
    await condition(() => finish);
    return lock.record;
  });
}
