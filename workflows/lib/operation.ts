import { setHandler, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { progressQuery, type OperationProgress } from '../../protocol/operations';
import { CustomerId, Hosts, Operation, SiteId, TriggeredBy } from '../../protocol/searchAttributes';

/**
 * The bookkeeping every site operation starts with: search attributes ops filter on in the Web UI
 * (SiteId, Operation, TriggeredBy, CustomerId), a one-line summary in the memo, and the progress
 * query. `step()` moves the progress on.
 */
export function startOperation(o: {
  operation: string;
  siteId: string;
  customerId?: string;
  triggeredBy?: string;
  summary: string;
}) {
  const progress: OperationProgress = {
    operation: o.operation,
    siteId: o.siteId,
    waitingForLock: false,
    step: 'starting',
    done: [],
    hosts: {},
  };
  setHandler(progressQuery, () => progress);
  upsertSearchAttributes([
    { key: SiteId, value: o.siteId },
    { key: Operation, value: o.operation },
    { key: TriggeredBy, value: o.triggeredBy ?? 'ui' },
    { key: CustomerId, value: o.customerId ?? null },
  ]);
  upsertMemo({ summary: o.summary });
  return {
    progress,
    step(name: string) {
      if (progress.step !== 'starting') progress.done.push(progress.step);
      progress.step = name;
    },
    hosts(names: string[]) {
      upsertSearchAttributes([{ key: Hosts, value: [...new Set(names)] }]);
    },
    finish() {
      if (progress.step !== 'starting') progress.done.push(progress.step);
      progress.step = 'done';
    },
  };
}
