import { proxyActivities, setHandler, defineQuery } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE } from '../activities/errors';

export interface CheckFleetInput {
  /** Host names to check; every host in the inventory when absent. */
  hosts?: string[];
}

export interface CheckFleetResult {
  healthy: string[];
  failed: { host: string; error: string }[];
}

const { checkHost, listHosts } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: [...NON_RETRYABLE] },
});

export const checkFleetProgress = defineQuery<CheckFleetResult>('progress');

/**
 * Fleet check: every host must answer over SSH, through its Docker engine, and from its MariaDB.
 * Hosts are checked in parallel; one failing host is reported, not fatal to the others.
 */
export async function checkFleet(input: CheckFleetInput = {}): Promise<CheckFleetResult> {
  const result: CheckFleetResult = { healthy: [], failed: [] };
  setHandler(checkFleetProgress, () => result);

  const hosts = input.hosts ?? (await listHosts()).map((h) => h.name);
  await Promise.all(
    hosts.map(async (host) => {
      try {
        await checkHost(host);
        result.healthy.push(host);
      } catch (err) {
        result.failed.push({ host, error: describe(err) });
      }
    }),
  );
  result.healthy.sort();
  return result;
}

/** An activity failure's own message (the ActivityFailure wrapper only says "activity failed"). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? err.cause.message : err.message;
}
