import { proxyActivities, proxyLocalActivities, type RetryPolicy } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE } from '../../activities/errors';
import { PATCH_FAILED } from '../../protocol/patchRoll';

/**
 * Every way a workflow calls its activities, by name: the name says the start-to-close bound (and
 * `local` an activity run by the worker that runs the workflow task, with no round trip through
 * the server's task queue). Retries are bounded, so that a host that stays down fails the
 * operation (and its saga or rollback cleans up) instead of retrying forever; a failure a retry
 * cannot fix (bad input, auth, host key: NON_RETRYABLE) is never retried, except where noted.
 *
 * | name           | start-to-close | heartbeat | tries | backoff         | use it for                                       |
 * |----------------|----------------|-----------|-------|-----------------|--------------------------------------------------|
 * | step1m         | 1 min          | —         | 5     | 1 s ×2 ≤ 20 s   | a short remote step: a command, an API call      |
 * | long15m        | 15 min         | 15 s      | 5     | 1 s ×2 ≤ 20 s   | image copies, container starts, health waits,    |
 * |                |                |           |       |                 | snapshots: a dead worker is noticed in 15 s      |
 * | health30s      | 30 s           | —         | 40    | 0.5 s ×2 ≤ 3 s  | one health request through a proxy: a fresh or   |
 * |                |                |           |       |                 | restarted site may need a little while           |
 * | once30m        | 30 min         | 30 s      | 1     | —               | what must not run twice blindly: postDeploy hooks|
 * | backup6h       | 6 h            | 30 s      | 4     | 5 s ×2 ≤ 2 min  | dumps, archives, verifications, restores of data |
 * | fleetCheck1m   | 1 min          | —         | 3     | 1 s ×2 ≤ 100 s  | checkFleet: one host's checks (a failure is      |
 * |                |                |           |       |                 | reported, the others go on)                      |
 * | lockRequest30s | 30 s           | —         | ∞     | 1 s ×2 ≤ 10 s   | asking a site's workflow for its lock (retries   |
 * |                |                |           |       |                 | every failure: the lock is the way in)           |
 * | status30s      | 30 s           | —         | 3     | 1 s ×2 ≤ 100 s  | the site workflow asking how a lock holder runs  |
 * |                |                |           |       |                 | (retries every failure)                          |
 * | localStep1m    | 1 min, local   | —         | 5     | 1 s ×2 ≤ 20 s   | the patch roll's short steps (a long serial      |
 * |                |                |           |       |                 | chain: no task-queue round trip each)            |
 * | localHealth30s | 30 s, local    | —         | 40    | 0.5 s ×2 ≤ 3 s  | the patch roll's health requests                 |
 * | localStep3m    | 3 min, local   | —         | 5     | 1 s ×2 ≤ 20 s   | the patch roll's containers check without a      |
 * |                |                |           |       |                 | reboot (may start one and wait for its health)   |
 *
 * The patch roll's in-flight waits, patch, reboot and host waits take their bounds from the roll's
 * input: patchRollSteps(cfg), at the end.
 */
const retry: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '20 seconds',
  maximumAttempts: 5,
  nonRetryableErrorTypes: [...NON_RETRYABLE],
};

const healthRetry: RetryPolicy = {
  ...retry,
  initialInterval: '500 milliseconds',
  maximumInterval: '3 seconds',
  maximumAttempts: 40,
};

export const step1m = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry });

export const long15m = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '15 seconds',
  retry,
});

export const health30s = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: healthRetry,
});

export const once30m = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 1, nonRetryableErrorTypes: [...NON_RETRYABLE] },
});

export const backup6h = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '5 seconds',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 4,
    nonRetryableErrorTypes: [...NON_RETRYABLE],
  },
});

export const fleetCheck1m = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: [...NON_RETRYABLE] },
});

export const lockRequest30s = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumInterval: '10 seconds' },
});

export const status30s = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

export const localStep1m = proxyLocalActivities<Activities>({ startToCloseTimeout: '1 minute', retry });

export const localHealth30s = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: healthRetry,
});

export const localStep3m = proxyLocalActivities<Activities>({ startToCloseTimeout: '3 minutes', retry });

/**
 * The patch, reboot and wait steps, with timeouts from the input. The patch is retried only for a
 * lost host or worker (its guard makes a retry safe), never when the command itself failed.
 */
export function patchRollSteps(cfg: {
  drainTimeoutSeconds: number;
  patchTimeoutSeconds: number;
  rebootTimeoutSeconds: number;
}) {
  const retry: RetryPolicy = {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '20 seconds',
  };
  return {
    /** Watching the proxies: local (no task-queue round trip), as long as the wait may take. */
    inFlight: proxyLocalActivities<Activities>({
      startToCloseTimeout: `${cfg.drainTimeoutSeconds + 30} seconds`,
      retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
    patch: proxyActivities<Activities>({
      startToCloseTimeout: `${cfg.patchTimeoutSeconds + 120} seconds`,
      heartbeatTimeout: '20 seconds',
      retry: { ...retry, maximumAttempts: 4, nonRetryableErrorTypes: [...NON_RETRYABLE, PATCH_FAILED] },
    }),
    reboot: proxyActivities<Activities>({
      startToCloseTimeout: '3 minutes',
      heartbeatTimeout: '20 seconds',
      retry: { ...retry, maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
    wait: proxyActivities<Activities>({
      startToCloseTimeout: `${cfg.rebootTimeoutSeconds + 60} seconds`,
      heartbeatTimeout: '30 seconds',
      retry: { ...retry, maximumAttempts: 2, nonRetryableErrorTypes: [...NON_RETRYABLE] },
    }),
  };
}
