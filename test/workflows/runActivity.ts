import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';

/**
 * Test-only: run one activity through real Temporal (its retries, timeouts, heartbeats and
 * cancellation), so a test can check how an activity behaves when a host misbehaves under it.
 */
export async function runActivity(input: {
  activity: keyof Activities;
  args: unknown[];
  options?: ActivityOptions;
}): Promise<unknown> {
  const acts = proxyActivities<Record<string, (...args: unknown[]) => Promise<unknown>>>({
    startToCloseTimeout: '1 minute',
    ...input.options,
  });
  return acts[input.activity]!(...input.args);
}
