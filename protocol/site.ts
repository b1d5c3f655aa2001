import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { SiteRecord } from '../schema/site';

/**
 * How operation workflows talk to a site's own workflow (`site:<siteId>`), which holds the site's
 * record and its lock: one operation at a time per site, first come first served.
 */

export const siteWorkflowId = (siteId: string) => `site:${siteId}`;

/** Who holds or waits for the lock: one run of one workflow. */
export interface LockHolder {
  workflowId: string;
  runId: string;
  /** provision, deprovision, suspend, resume, deploy, backup, restore, patch… */
  operation: string;
}

export const sameHolder = (a: LockHolder | undefined, b: LockHolder | undefined) =>
  !!a && !!b && a.workflowId === b.workflowId && a.runId === b.runId;

/** To the site workflow: queue me for the lock (sent by the requestSiteLock activity, with start). */
export const requestLockSignal = defineSignal<[LockHolder]>('requestLock');
/** To the site workflow: I am done (sent in a non-cancellable scope, however the operation ended). */
export const releaseLockSignal = defineSignal<[LockHolder]>('releaseLock');
/** To the site workflow: change the site's record (only the lock holder may). */
export const updateRecordSignal =
  defineSignal<[{ holder: LockHolder; patch: Partial<SiteRecord> }]>('updateRecord');
/** From the site workflow to the operation: the lock is yours; here is the record as it stands. */
export const lockGrantedSignal = defineSignal<[SiteRecord]>('lockGranted');

export interface SiteView {
  record: SiteRecord;
  holder?: LockHolder & { since: string };
  queue: (LockHolder & { since: string })[];
}
/** The site's record, who holds the lock, and who waits. */
export const siteQuery = defineQuery<SiteView>('site');

/** The site workflow's input: its id, and on continue-as-new the state it carries over. */
export interface SiteWorkflowInput {
  siteId: string;
  /** State carried over by continue-as-new. */
  carried?: SiteView;
}
