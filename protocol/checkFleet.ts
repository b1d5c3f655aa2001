import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { hostName } from '../schema/common';
import { SiteId } from '../schema/site';

/** The fleet check: input, result and `progress` query. */

export const CheckFleetInput = z.strictObject({
  /** Host names to check; every host in the inventory when absent. */
  hosts: z.array(hostName).max(1000).optional(),
  /** Site ids whose needs to check on those hosts; every site on the fleet when absent. */
  sites: z.array(SiteId).max(10_000).optional(),
  /**
   * Start a repairSite (a child left running when the check ends) for every site that is failed,
   * or out of line on a host that answers; none for a site with an operation under way.
   */
  repair: z.boolean().default(false),
});
export type CheckFleetInput = z.input<typeof CheckFleetInput>;

/** A site that is not as its record says, as the check saw it from the hosts that answer. */
export interface SiteProblems {
  siteId: string;
  state: string;
  /** `<host>: <what>`, or the failed site's cause. */
  problems: string[];
}

export interface CheckFleetResult {
  /** Hosts that answer over SSH, through Docker and from MariaDB, and whose site checks ran. */
  healthy: string[];
  failed: { host: string; error: string }[];
  /** How many sites were checked (those with an operation under way are not: see busy). */
  sitesChecked: number;
  /** Sites holding or queued for their lock: not checked (an operation may be mid-change). */
  busy: { siteId: string; operations: string[] }[];
  /** Sites whose own workflow did not answer (no worker on its task queue?): not checked. */
  unanswered: string[];
  /** Sites failed or out of line. */
  sites: SiteProblems[];
  /** With `repair`: the repairSite started for each site in `sites` (or why none was). */
  repairs: { siteId: string; workflowId?: string; started: boolean; why?: string }[];
}

export const checkFleetProgress = defineQuery<CheckFleetResult>('progress');
