import { openFleet, type Fleet } from '../../activities/fleet';
import { CLIENT_KEY, INVENTORY } from '../../dev/fleet';

/** The test bed's fleet, as the worker would open it. Close it in afterAll. */
export function openTestFleet(): Fleet {
  return openFleet({ inventoryPath: INVENTORY, privateKeyPath: CLIENT_KEY });
}
