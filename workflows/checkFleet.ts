import { proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE } from '../activities/errors';
import { checkFleetProgress, type CheckFleetInput, type CheckFleetResult } from '../protocol/checkFleet';

const { checkHost, listHosts } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: [...NON_RETRYABLE] },
});

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
