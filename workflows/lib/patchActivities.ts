import { proxyLocalActivities, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE } from '../../activities/errors';

/**
 * The patch roll's short steps (listings, route reads and writes, probes) as local activities:
 * run by the worker that runs the workflow task, with no round trip through the server's task
 * queue each (a serial roll is a long chain of them). Each is idempotent, so a worker that dies
 * mid-step costs a re-run, as with ordinary activities. The long steps (the patch, a reboot, the
 * wait for a host, containers starting after a reboot) stay ordinary activities with heartbeats.
 */
const retry: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '20 seconds',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [...NON_RETRYABLE],
};

export const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '1 minute', retry });

/** Health checks: a restarted site, or a proxy that just reloaded, may need a little while. */
export const localPatient = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { ...retry, initialInterval: '500 milliseconds', maximumInterval: '3 seconds', maximumAttempts: 40 },
});

/**
 * The containers' check after a patch that needed no reboot: usually one listing (all running and
 * healthy), but it may have to start a container and wait for its health (2 minutes at most by
 * default), hence its own timeout. After a reboot it stays an ordinary activity with heartbeats.
 */
export const localContainers = proxyLocalActivities<Activities>({ startToCloseTimeout: '3 minutes', retry });
