import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { Argv, hostName } from '../schema/common';
import { HostRole } from '../schema/inventory';

/**
 * The patch roll's contract with whoever starts and steers it: its input (one JSON object, pasted
 * into the Web UI or sent by a Schedule), the `progress` query, and the controls, each both an
 * Update (answers with the new status, or refuses with the reason) and a Signal of the same name
 * (fire and forget; one that does not apply is ignored).
 */

/** A count (`2`) or a share of the selected hosts (`"25%"`). */
const countOrPercent = (what: string, min: number) =>
  z.union(
    [
      z
        .number()
        .int(`${what} must be a whole number`)
        .min(min, `${what} must be at least ${min}`)
        .max(10_000),
      z
        .string()
        .regex(/^\d{1,3}(\.\d+)?%$/, `${what} must be a number or a percentage like "25%"`)
        .refine(
          (s) => {
            const p = Number(s.slice(0, -1));
            return p <= 100 && (min === 0 || p > 0);
          },
          `${what} must be a percentage ${min === 0 ? 'from 0%' : 'above 0%'} to 100%`,
        ),
    ],
    { error: `${what} must be a number or a percentage like "25%"` },
  );

/** The patch of a host whose inventory entry names none (the demo fleet's names a harmless one). */
export const DEFAULT_PATCH_COMMAND = ['sh', '-c', 'apt-get update && apt-get -y upgrade'];
export const DEFAULT_REBOOT_CHECK = ['test', '-e', '/run/reboot-required'];

export const HostSelector = z
  .strictObject({
    /** These hosts (each must be in the inventory). */
    names: z.array(hostName).max(1000).optional(),
    /** Hosts with at least one of these roles. */
    roles: z.array(HostRole).min(1).max(6).optional(),
    /** Hosts with every one of these labels. */
    labels: z.record(z.string(), z.string()).optional(),
  })
  .refine((s) => s.names !== undefined || s.roles !== undefined || s.labels !== undefined, {
    message: 'say which hosts: names, roles or labels (a roll over the whole fleet must be asked for)',
  });
export type HostSelector = z.infer<typeof HostSelector>;

export const PatchRollInput = z
  .strictObject({
    /** Which hosts: every given criterion must match (names AND roles AND labels). */
    hosts: HostSelector,
    /** Hosts patched at once: a count or a share of the selected hosts (rounded up). */
    batchSize: countOrPercent('batchSize', 1).default(1),
    /** Failed hosts the roll tolerates before it stops: a count or a share (rounded down). */
    errorBudget: countOrPercent('errorBudget', 0).default(0),
    /** No host starts its patch after `notAfter`; at the cutoff, stop at once or let the batch finish. */
    window: z
      .strictObject({
        notAfter: z.iso.datetime({ offset: true, error: 'window.notAfter must be an ISO time with a zone' }),
        atCutoff: z.enum(['stop', 'finish-batch']).default('stop'),
      })
      .optional(),
    /** First a batch of one host, then wait for ops' `approve` (or `canaryWaitSeconds`, if given). */
    canary: z.boolean().default(true),
    canaryWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional(),
    /**
     * After a host is taken out, how long to wait for requests still in flight (nginx workers
     * finishing what they took before the change) before the patch starts anyway.
     */
    drainTimeoutSeconds: z.number().int().min(0).max(3600).default(60),
    /**
     * The patch, as an argument vector (run under a per-roll guard: once per host per roll).
     * Unset: the host's `patchCommand` from the inventory, else DEFAULT_PATCH_COMMAND.
     */
    patchCommand: Argv.optional(),
    patchTimeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(6 * 3600)
      .default(1800),
    /** 'if-required': when `rebootCheck` exits 0 after the patch. */
    reboot: z.enum(['if-required', 'always', 'never']).default('if-required'),
    rebootCheck: Argv.default(DEFAULT_REBOOT_CHECK),
    /** How long a rebooting host may take to answer SSH and Docker again. */
    rebootTimeoutSeconds: z.number().int().min(10).max(3600).default(600),
    /** Who asked: `ops:<name>`, `schedule` (a search attribute). */
    triggeredBy: z.string().max(100).optional(),
  })
  .refine((i) => i.canary || i.canaryWaitSeconds === undefined, {
    message: 'canaryWaitSeconds needs canary: true',
    path: ['canaryWaitSeconds'],
  });
export type PatchRollInput = z.input<typeof PatchRollInput>;
export type PatchRollConfig = z.output<typeof PatchRollInput>;

/** `2` → 2; `"25%"` of 10 → ceil (batch) or floor (budget). */
export function resolveCount(value: number | string, total: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value;
  const exact = (Number(value.slice(0, -1)) / 100) * total;
  // 1e-9: 0.1 * 30 is 3.0000000000000004 in floating point, which must not round up to 4
  return round === 'up' ? Math.ceil(exact - 1e-9) : Math.floor(exact + 1e-9);
}

/** What the roll does for one site while a host is out. */
export type SiteAction =
  /** Drain the host's backend on every proxy (other app servers serve); readmit after. */
  | 'drain'
  /** The host is the site's only app server: the maintenance page (503) until it is back. */
  | 'maintenance'
  /** Nothing to change in its route (no app container here, or the site is not being served). */
  | 'none';

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

/** What the roll returns: how it ended, and how each host did. */
export type PatchRollResult = Pick<
  PatchRollProgress,
  'rollId' | 'status' | 'stopReason' | 'done' | 'failed' | 'skipped' | 'heldBack' | 'notStarted' | 'hosts'
>;

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
