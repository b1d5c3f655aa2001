import {
  ApplicationFailure,
  ContinueAsNew,
  isCancellation,
  setHandler,
  TemporalFailure,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  causeChain,
  failedAt,
  failureFacts,
  operationFailureType,
  type OperationFailureDetails,
} from '../../protocol/failures';
import { progressQuery, type OperationProgress } from '../../protocol/operations';
import { CustomerId, Hosts, Operation, SiteId, TriggeredBy } from '../../protocol/searchAttributes';

/**
 * The bookkeeping every site operation starts with: search attributes ops filter on in the Web UI
 * (SiteId, Operation, TriggeredBy, CustomerId), a one-line summary in the memo, and the progress
 * query. `step()` moves the progress on. The operation's body runs in withSiteLock
 * (lib/siteLock.ts), which fails it as operationFailure says: naming root cause, step and host.
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

/**
 * What fails an operation when `err` escapes its body. An activity's failure (or a host step's, or
 * a child's) arrives wrapped ("Activity task failed"), its cause a few links down: it becomes one
 * non-retryable ApplicationFailure (`BackupFailed`, `SuspendFailed`, …) whose message is
 * `<operation> <site> failed at "<step>" on <host>: <root cause>` and whose details are
 * OperationFailureDetails, the original kept as its cause. Left as they are: a failure the
 * workflow raised itself (its message already says what and why: a refusal, DeployFailed,
 * ProvisionFailed, …), a cancellation, a continue-as-new, and an error of the workflow code (no
 * Temporal failure in its chain): that one fails the workflow task, which retries until fixed code
 * is deployed, as a bug should.
 */
export function operationFailure(progress: OperationProgress, err: unknown): unknown {
  if (err instanceof ApplicationFailure || err instanceof ContinueAsNew || isCancellation(err)) return err;
  if (!(err instanceof Error) || !causeChain(err).some((l) => l instanceof TemporalFailure)) return err;
  const step = progress.waitingForLock ? 'waiting for the site lock' : progress.step;
  const facts = failureFacts(err);
  const details: OperationFailureDetails = {
    step,
    host: facts.host,
    activityType: facts.activityType,
    rootType: facts.rootType,
  };
  return ApplicationFailure.create({
    type: operationFailureType(progress.operation),
    message: failedAt(`${progress.operation} ${progress.siteId}`, step, facts),
    details: [details],
    cause: err,
    nonRetryable: true,
  });
}
