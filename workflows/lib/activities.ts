import { proxyActivities, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE } from '../../activities/errors';

/**
 * The activity options business workflows share. Retries are bounded so that a host that stays
 * down fails the operation (and its saga cleans up) rather than retrying forever; failures that a
 * retry cannot fix (bad input, auth, host key) are never retried.
 */
const retry: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '20 seconds',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [...NON_RETRYABLE],
};

/** Short remote steps: a command, an API call. */
export const quick = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry });

/** Long steps (image copies, health waits, dumps): they heartbeat, so a dead worker is noticed in 15 s. */
export const slow = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '15 seconds',
  retry,
});

/** Health checks through the proxy: a fresh or restarted site may need a little while. */
export const patient = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { ...retry, initialInterval: '500 milliseconds', maximumInterval: '3 seconds', maximumAttempts: 40 },
});
