import { setHandler } from '@temporalio/workflow';
import { CheckFleetInput, checkFleetProgress, type CheckFleetResult } from '../protocol/checkFleet';
import { fleetCheck1m } from './lib/activities';
import { parseWorkflowInput } from './lib/input';

/**
 * Fleet check: every host must answer over SSH, through its Docker engine, and from its MariaDB.
 * Hosts are checked in parallel; one failing host is reported, not fatal to the others.
 */
export async function checkFleet(input: CheckFleetInput = {}): Promise<CheckFleetResult> {
  const { hosts: named } = parseWorkflowInput(CheckFleetInput, input, 'checkFleet input');
  const result: CheckFleetResult = { healthy: [], failed: [] };
  setHandler(checkFleetProgress, () => result);

  const hosts = named ?? (await fleetCheck1m.listHosts()).map((h) => h.name);
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
