import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { SiteAction } from '../patchRoll/plan';

/**
 * How ops (the Web UI, the CLI, tests) talk to a running patchRoll: the `progress` query, and the
 * controls, each both an Update (answers with the new status, or refuses with the reason) and a
 * Signal of the same name (fire and forget; one that does not apply is ignored).
 */

export type HostState =
  | 'pending'
  | 'waiting-for-locks'
  | 'draining'
  | 'patching'
  | 'rebooting'
  | 'starting'
  | 'checking'
  | 'readmitting'
  /** Patched, back and serving. */
  | 'done'
  /** A step failed: counted against the error budget; drained (if the patch had started). */
  | 'failed'
  /** Ops skipped it before its patch started: untouched (or drained and readmitted). */
  | 'skipped'
  /** Taking it out would have left a site with no active app server: untouched. */
  | 'held-back'
  /** The roll stopped (abort, window, budget) before its patch started: untouched or readmitted. */
  | 'not-started';

export const FINAL_HOST_STATES: readonly HostState[] = [
  'done',
  'failed',
  'skipped',
  'held-back',
  'not-started',
];

export interface HostProgress {
  state: HostState;
  batch: number;
  /** What the roll does for each site on the host while it is out. */
  sites: { siteId: string; action: SiteAction }[];
  patch?: { result: 'ran' | 'already-done'; seconds: number };
  rebooted?: boolean;
  /** Set when requests were still in flight at drainTimeoutSeconds and the patch went ahead. */
  inFlightAtPatch?: string;
  /** Why it failed, was held back or not started: one line. */
  reason?: string;
  /** Where a failed host was left: 'drained' (its sites' traffic is elsewhere or on the maintenance page) or 'readmitted'. */
  leftAs?: 'drained' | 'readmitted' | 'untouched';
}

export type RollStatus =
  'planning' | 'running' | 'waiting-for-approval' | 'paused' | 'completed' | 'stopped' | 'aborted';

export interface PatchRollProgress {
  operation: 'patch-roll';
  rollId: string;
  status: RollStatus;
  /** Why the roll stopped, or is stopping (abort, budget, window). */
  stopReason?: string;
  paused: boolean;
  waitingForLock: boolean;
  batches: string[][];
  /** 1-based index of the batch running (or last run); 0 before the first. */
  currentBatch: number;
  done: string[];
  failed: string[];
  remaining: string[];
  skipped: string[];
  heldBack: string[];
  notStarted: string[];
  errorBudget: { allowed: number; used: number };
  canary: { host?: string; approved: boolean };
  hosts: Record<string, HostProgress>;
}

export const patchProgressQuery = defineQuery<PatchRollProgress>('progress');

/** Let the roll go on after its canary host (before `canaryWaitSeconds` runs out, if set). */
export const approveUpdate = defineUpdate<RollStatus, []>('approve');
/** No new batch starts until `resume` (the running batch finishes). */
export const pauseUpdate = defineUpdate<RollStatus, []>('pause');
export const resumeUpdate = defineUpdate<RollStatus, []>('resume');
/** `{}` or `{ "reason": "…" }`. */
export type AbortRequest = { reason?: string } | undefined;

/** Stop: hosts whose patch runs finish and are readmitted; the others are put back untouched. */
export const abortUpdate = defineUpdate<RollStatus, [AbortRequest]>('abort');
/** Leave one host out (one whose patch has not started). */
export const skipHostUpdate = defineUpdate<HostState, [{ host: string }]>('skipHost');

export const approveSignal = defineSignal<[]>('approve');
export const pauseSignal = defineSignal<[]>('pause');
export const resumeSignal = defineSignal<[]>('resume');
export const abortSignal = defineSignal<[AbortRequest]>('abort');
export const skipHostSignal = defineSignal<[{ host: string }]>('skipHost');

/** The failure type of a patch command that ran and exited non-zero (never retried). */
export const PATCH_FAILED = 'PatchFailed';
