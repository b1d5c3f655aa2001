import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { z } from 'zod';
import type { NightlyBackupsInput } from '../protocol/nightlyBackups';
import { parseOrThrow } from '../schema/common';
import type { nightlyBackups } from '../workflows';

/**
 * The Temporal Schedules Quartermaster keeps: the nightly backups' (`qm schedule nightly`, which
 * makes it exist as configured).
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
  const action: ScheduleOptionsStartWorkflowAction<typeof nightlyBackups> = {
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
  const c = parseOrThrow(NightlyScheduleConfig, config, 'nightly schedule');
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
