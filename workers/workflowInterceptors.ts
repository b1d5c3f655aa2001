import {
  ApplicationFailure,
  ContinueAsNew,
  isCancellation,
  metricMeter,
  workflowInfo,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';
import { arrivedUnencrypted, UNENCRYPTED_INPUT, UNENCRYPTED_INPUT_MESSAGE } from '../client/payloadConverter';

/**
 * Runs INSIDE the workflow sandbox (bundled with the workflows, see workers/worker.ts and
 * deploy/build.ts): no Node APIs, no I/O. It counts every operation (workflow execution) the
 * worker runs, by workflow type, through the SDK's workflow metric meter, which is not called
 * during replay (a worker restart does not count a workflow twice) and lands on the SDK's
 * Prometheus exporter with the tags `workflow_type`, `namespace` and `task_queue`:
 *
 *   qm_operations_started_total        a new execution chain started (not a continue-as-new)
 *   qm_operations_finished_total{outcome="completed|failed|cancelled"}
 *   qm_operation_duration_seconds      start of the chain to its end (a deploy, a backup, ...)
 *
 * A run that continues as new is neither finished nor started. Metrics never fail a workflow:
 * every call is guarded.
 *
 * It also refuses a workflow whose input reached the worker unencrypted (client/payloadConverter.ts:
 * only a worker with QM_CODEC_KEY marks such input): it fails at once, non-retryable, with a message
 * that says why and what to do, before the workflow's code runs.
 */

/** Its buckets are set in workers/telemetry.ts. */
export const OPERATION_DURATION = 'qm_operation_duration_seconds';

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a metric must never break an operation
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        if (input.args.some(arrivedUnencrypted))
          throw ApplicationFailure.create({
            type: UNENCRYPTED_INPUT,
            message: UNENCRYPTED_INPUT_MESSAGE,
            nonRetryable: true,
          });
        const info = workflowInfo();
        if (!info.continuedFromExecutionRunId)
          safely(() => metricMeter.createCounter('qm_operations_started', 'operations').add(1));
        const finished = (outcome: 'completed' | 'failed' | 'cancelled') =>
          safely(() => {
            metricMeter.createCounter('qm_operations_finished', 'operations').add(1, { outcome });
            const seconds = (Date.now() - info.startTime.getTime()) / 1000;
            metricMeter
              .createHistogram(OPERATION_DURATION, 'float', 's', 'operation duration')
              .record(Math.max(0, seconds), { outcome });
          });
        try {
          const result = await next(input);
          finished('completed');
          return result;
        } catch (err) {
          if (err instanceof ContinueAsNew) throw err;
          finished(isCancellation(err) ? 'cancelled' : 'failed');
          throw err;
        }
      },
    },
  ],
});
