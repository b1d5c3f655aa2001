import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { z } from 'zod';
import type { SiteRecord } from '../../schema/site';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import type { NightlyBackupsInput } from '../../protocol/nightlyBackups';
import { failure, FailureType } from '../errors';
import { parseInput } from '../input';

/**
 * The nightly backups' Temporal Schedule, and the list of sites it backs up. Both need a Temporal
 * client (the worker gives the activities one); ensureNightlyBackupSchedule is also what the CLI
 * (activities/backup/cli.ts) runs.
 */

export const NIGHTLY_SCHEDULE_ID = 'nightly-backups';

export const NightlyScheduleConfig = z.strictObject({
  scheduleId: z.string().min(1).max(200).default(NIGHTLY_SCHEDULE_ID),
  /** When the night starts (UTC). */
  hourUtc: z.number().int().min(0).max(23).default(1),
  minuteUtc: z.number().int().min(0).max(59).default(0),
  /** Backups spread over this many minutes from the start (per-site offset). */
  windowMinutes: z
    .number()
    .int()
    .min(0)
    .max(12 * 60)
    .default(240),
  /** Backups at once per DB host. */
  perDbHost: z.number().int().min(1).max(16).default(2),
  /** Only these sites (default: every active site). */
  sites: z.array(z.string()).max(10_000).optional(),
});
export type NightlyScheduleConfig = z.input<typeof NightlyScheduleConfig>;

function desired(c: z.output<typeof NightlyScheduleConfig>, taskQueue: string) {
  const args: [NightlyBackupsInput] = [
    {
      windowMinutes: c.windowMinutes,
      perDbHost: c.perDbHost,
      triggeredBy: 'schedule',
      ...(c.sites ? { sites: c.sites } : {}),
    },
  ];
  const action: ScheduleOptionsStartWorkflowAction<(i: NightlyBackupsInput) => Promise<unknown>> = {
    type: 'startWorkflow',
    workflowType: 'nightlyBackups',
    // the Schedule appends the scheduled time: nightly-backups-2026-03-01T01:00:00Z
    workflowId: c.scheduleId,
    taskQueue,
    args,
  };
  return {
    spec: { calendars: [{ hour: c.hourUtc, minute: c.minuteUtc, comment: 'nightly backups (UTC)' }] },
    action,
    // a night still running when the next starts: skip, do not pile up; a server down at the
    // start time still starts the night within 2 hours of it
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '2 hours' as const },
  };
}

/** The schedule as described, in the terms we set it: equal means nothing to update. */
function comparable(d: ScheduleDescription) {
  const cal = d.spec.calendars ?? [];
  return JSON.stringify({
    calendars: cal.map((c) => ({ hour: c.hour?.map((r) => r.start), minute: c.minute?.map((r) => r.start) })),
    intervals: d.spec.intervals?.length ?? 0,
    type: d.action.type,
    workflowType: d.action.type === 'startWorkflow' ? d.action.workflowType : undefined,
    workflowId: d.action.type === 'startWorkflow' ? d.action.workflowId : undefined,
    taskQueue: d.action.type === 'startWorkflow' ? d.action.taskQueue : undefined,
    args: d.action.type === 'startWorkflow' ? d.action.args : undefined,
    overlap: d.policies.overlap,
  });
}

function comparableDesired(w: ReturnType<typeof desired>) {
  return JSON.stringify({
    calendars: w.spec.calendars.map((c) => ({ hour: [c.hour], minute: [c.minute] })),
    intervals: 0,
    type: 'startWorkflow',
    workflowType: w.action.workflowType,
    workflowId: w.action.workflowId,
    taskQueue: w.action.taskQueue,
    args: w.action.args,
    overlap: w.policies.overlap,
  });
}

/**
 * Make the nightly schedule exist as configured: created if absent, updated if it differs (its
 * paused state and note are kept: ops may have paused it), else left alone. Safe to run any
 * number of times, from several places at once (a create that loses the race is an update).
 */
export async function ensureNightlyBackupSchedule(
  client: Client,
  taskQueue: string,
  config: NightlyScheduleConfig = {},
): Promise<{ scheduleId: string; action: 'created' | 'updated' | 'unchanged' }> {
  const c = parseInput(NightlyScheduleConfig, config, 'ensureNightlyBackupSchedule');
  const want = desired(c, taskQueue);
  const handle = client.schedule.getHandle(c.scheduleId);
  let current: ScheduleDescription | undefined;
  try {
    current = await handle.describe();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  if (!current) {
    try {
      await client.schedule.create({
        scheduleId: c.scheduleId,
        ...want,
        state: { note: 'managed by Quartermaster' },
      });
      return { scheduleId: c.scheduleId, action: 'created' };
    } catch (err) {
      if (!(err instanceof Error && err.name === 'ScheduleAlreadyRunning')) throw err;
      current = await handle.describe();
    }
  }
  if (comparable(current) === comparableDesired(want))
    return { scheduleId: c.scheduleId, action: 'unchanged' };
  await handle.update((prev) => ({
    ...prev,
    ...want,
    state: { paused: prev.state.paused, note: prev.state.note },
  }));
  return { scheduleId: c.scheduleId, action: 'updated' };
}

/** A site the nightly backs up. */
export interface ActiveSite {
  siteId: string;
  plan?: string;
  dbHost: string;
  storageHost: string;
}

/**
 * Every active site: visibility finds the running site workflows whose State is active, and each
 * is asked for its record (placement, plan). Read-only.
 */
export async function listActiveSites(client: Client): Promise<ActiveSite[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND State = 'active'`,
  }))
    ids.push(w.workflowId);
  const out: ActiveSite[] = [];
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const view = await client.workflow.getHandle(id).query(siteQuery);
        const r: SiteRecord = view.record;
        if (r.state !== 'active' || !r.placement || siteWorkflowId(r.siteId) !== id) continue;
        out.push({
          siteId: r.siteId,
          plan: r.spec?.plan,
          dbHost: r.placement.dbHost,
          storageHost: r.placement.storageHost,
        });
      }
    }),
  );
  return out.sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
}

export function makeScheduleActivities(client: Client | undefined, taskQueue: string) {
  const needClient = () => {
    if (!client) throw failure(FailureType.InvalidInput, 'this worker has no Temporal client for schedules');
    return client;
  };
  return {
    /** Every active site with its DB and storage host. Read-only. */
    listActiveSites: async (): Promise<ActiveSite[]> => listActiveSites(needClient()),
    /** See ensureNightlyBackupSchedule: create-if-absent, update-if-different. */
    ensureNightlyBackupSchedule: async (input: NightlyScheduleConfig = {}) =>
      ensureNightlyBackupSchedule(needClient(), taskQueue, input),
  };
}
