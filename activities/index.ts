import { makeBackupActivities } from './backup/activities';
import { makeDockerActivities } from './docker/activities';
import { makeDatabaseActivities } from './db/activities';
import { makeHostActivities } from './host/activities';
import type { Fleet } from './fleet';
import { makeCheckHost, makeReachHost } from './fleetcheck/checkHost';
import { makeGitActivities, type GitHookConfig } from './git/activities';
import { makeProxyActivities } from './proxy/activities';
import { makeReleaseActivities } from './release/activities';
import { makeSiteActivities } from './site/activities';
import { makeStorageActivities } from './storage/activities';
import { makeSiteRecordActivities } from './temporal/siteRecords';
import { makeTemporalActivities } from './temporal/siteLock';
import type { Client } from '@temporalio/client';

/**
 * Every activity the worker registers, each a closure over the fleet it reaches the hosts through.
 * Workflows see only the type (proxyActivities<Activities>).
 */
export interface ActivityDeps {
  /** For the activities that talk to Temporal itself (site locks); absent in plain scripts. */
  temporal?: Client;
  /** The task queue the site workflows run on. */
  taskQueue?: string;
  /** Where the Git hook notifies the platform, and its secret (the worker's configuration). */
  gitHook?: GitHookConfig;
}

export function createActivities(fleet: Fleet, deps: ActivityDeps = {}) {
  return {
    checkHost: makeCheckHost(fleet),
    reachHost: makeReachHost(fleet),
    /** The inventory as workflows may see it (no keys, no secrets). */
    listHosts: async (): Promise<
      { name: string; address: string; roles: string[]; labels: Record<string, string> }[]
    > => fleet.hosts.map((h) => ({ name: h.name, address: h.address, roles: h.roles, labels: h.labels })),
    ...makeDatabaseActivities(fleet),
    ...makeDockerActivities(fleet),
    ...makeProxyActivities(fleet),
    ...makeSiteActivities(fleet),
    ...makeStorageActivities(fleet),
    ...makeTemporalActivities(deps.temporal, deps.taskQueue ?? 'quartermaster'),
    ...makeBackupActivities(fleet),
    ...makeHostActivities(fleet),
    ...makeSiteRecordActivities(deps.temporal),
    ...makeGitActivities(fleet, deps.gitHook),
    ...makeReleaseActivities(fleet),
  };
}

export type Activities = ReturnType<typeof createActivities>;
