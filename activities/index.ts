import { makeDockerActivities } from './docker/activities';
import { makeDatabaseActivities } from './db/activities';
import type { Fleet } from './fleet';
import { makeCheckHost } from './fleetcheck/checkHost';
import { makeProxyActivities } from './proxy/activities';

/**
 * Every activity the worker registers, each a closure over the fleet it reaches the hosts through.
 * Workflows see only the type (proxyActivities<Activities>).
 */
export function createActivities(fleet: Fleet) {
  return {
    checkHost: makeCheckHost(fleet),
    listHosts: async (): Promise<{ name: string; roles: string[] }[]> =>
      fleet.hosts.map((h) => ({ name: h.name, roles: h.roles })),
    ...makeDatabaseActivities(fleet),
    ...makeDockerActivities(fleet),
    ...makeProxyActivities(fleet),
  };
}

export type Activities = ReturnType<typeof createActivities>;
