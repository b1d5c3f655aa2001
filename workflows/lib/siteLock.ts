import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { SiteRecord } from '../../schema/site';
import {
  lockGrantedSignal,
  releaseLockSignal,
  siteWorkflowId,
  updateRecordSignal,
  type LockHolder,
} from './siteProtocol';

const { requestSiteLock } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '10 seconds' },
});

export interface SiteLock {
  /** The site's record as it stood when the lock was granted. */
  record: SiteRecord;
  /** Change the site's record (durably, in the site's workflow). */
  update(patch: Partial<SiteRecord>): Promise<void>;
}

/**
 * Run `body` holding the site's lock: wait (visibly, in the site workflow's queue) until every
 * earlier operation on the site has finished, run, then release — in a non-cancellable scope, so
 * a failed or cancelled operation never keeps the site locked.
 */
export async function withSiteLock<T>(
  siteId: string,
  operation: string,
  status: { waitingForLock: boolean },
  body: (lock: SiteLock) => Promise<T>,
): Promise<T> {
  const info = workflowInfo();
  const holder: LockHolder = { workflowId: info.workflowId, runId: info.runId, operation };
  let granted: SiteRecord | undefined;
  setHandler(lockGrantedSignal, (record) => {
    granted ??= record;
  });

  status.waitingForLock = true;
  await requestSiteLock({ siteId, holder });
  await condition(() => granted !== undefined);
  status.waitingForLock = false;

  const siteWorkflow = getExternalWorkflowHandle(siteWorkflowId(siteId));
  const lock: SiteLock = {
    record: granted!,
    update: async (patch) => {
      await siteWorkflow.signal(updateRecordSignal, {
        holder,
        patch: { ...patch, lastOperation: info.workflowId },
      });
    },
  };
  try {
    return await body(lock);
  } finally {
    await CancellationScope.nonCancellable(() => siteWorkflow.signal(releaseLockSignal, holder));
  }
}
