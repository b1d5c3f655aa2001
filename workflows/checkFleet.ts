import { setHandler, defineQuery } from '@temporalio/workflow';
import { fleetCheck1m } from './lib/activities';

export interface CheckFleetInput {
  /** Host names to check; every host in the inventory when absent. */
  hosts?: string[];
}

export interface CheckFleetResult {
  healthy: string[];
  failed: { host: string; error: string }[];
}

export const checkFleetProgress = defineQuery<CheckFleetResult>('progress');

/**
 * Fleet check: every host must answer over SSH, through its Docker engine, and from its MariaDB.
 * Hosts are checked in parallel; one failing host is reported, not fatal to the others.
 */
export async function checkFleet(input: CheckFleetInput = {}): Promise<CheckFleetResult> {
  const result: CheckFleetResult = { healthy: [], failed: [] };
  setHandler(checkFleetProgress, () => result);

  const hosts = input.hosts ?? (await fleetCheck1m.listHosts()).map((h) => h.name);
  await Promise.all(
    hosts.map(async (host) => {
      try {
        await fleetCheck1m.checkHost(host);
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
