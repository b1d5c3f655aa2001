import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { openFleet, type Fleet } from '../../activities/fleet';
import { CLIENT_KEY, INVENTORY } from '../../dev/fleet';
import { testEnv } from './temporal';

/**
 * What a bed test file works with: the jest setup's Temporal dev server (attached, not started)
 * and the bed's fleet, opened as the worker opens it. Open it first in beforeAll and close it last
 * in afterAll (after the file's own clean-up, which still needs it):
 *
 *     let bed: Bed;
 *     beforeAll(async () => {
 *       bed = await openBed();
 *     });
 *     afterAll(() => bed?.close());
 */
export interface Bed {
  readonly env: TestWorkflowEnvironment;
  readonly fleet: Fleet;
  close(): Promise<void>;
}

/** The bed's fleet alone, as the worker would open it (or from another inventory of the bed: testbed.layout); the caller closes it. */
export function openTestFleet(inventoryPath = INVENTORY): Fleet {
  return openFleet({ inventoryPath, privateKeyPath: CLIENT_KEY });
}

/**
 * Attach to Temporal and open the fleet; a file that needs only one says `{ fleet: false }` or
 * `{ temporal: false }`, one that needs the bed's hosts in other roles gives their `inventory`
 * (testbed.layout).
 */
export async function openBed(
  parts: { temporal?: boolean; fleet?: boolean; inventory?: string } = {},
): Promise<Bed> {
  const env = parts.temporal === false ? undefined : await testEnv();
  const fleet = parts.fleet === false ? undefined : openTestFleet(parts.inventory);
  const missing = (what: string): never => {
    throw new Error(`this file opened its bed without ${what}`);
  };
  return {
    get env() {
      return env ?? missing('Temporal');
    },
    get fleet() {
      return fleet ?? missing('the fleet');
    },
    async close() {
      await fleet?.close();
      await env?.teardown();
    },
  };
}
