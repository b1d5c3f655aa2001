import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { z } from 'zod';
import type { CheckFleetInput } from '../protocol/checkFleet';
import type { NightlyBackupsInput } from '../protocol/nightlyBackups';
import { parseOrThrow } from '../schema/common';
import type { checkFleet, nightlyBackups } from '../workflows';

/**
 * The Temporal Schedules Quartermaster keeps, each made to exist as configured by a `qm schedule`
 * command: the nightly backups' (`qm schedule nightly`) and the fleet check's, which repairs what
 * it finds out of line (`qm schedule fleet-check`).
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
    intervals: (d.spec.intervals ?? []).map((i) => i.every),
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
    intervals: [],
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
  return ensureSchedule(client, c.scheduleId, want, comparableDesired(want));
}

export const FLEET_CHECK_SCHEDULE_ID = 'fleet-check';

export const FleetCheckScheduleConfig = z.strictObject({
  scheduleId: z.string().min(1).max(200).default(FLEET_CHECK_SCHEDULE_ID),
  /** How often the fleet is checked (and what is out of line repaired). */
  everyMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(5),
});
export type FleetCheckScheduleConfig = z.input<typeof FleetCheckScheduleConfig>;

function desiredFleetCheck(c: z.output<typeof FleetCheckScheduleConfig>, taskQueue: string) {
  const args: [CheckFleetInput] = [{ repair: true }];
  const action: ScheduleOptionsStartWorkflowAction<typeof checkFleet> = {
    type: 'startWorkflow',
    workflowType: 'checkFleet',
    // the Schedule appends the scheduled time: fleet-check-2026-03-01T01:05:00Z
    workflowId: c.scheduleId,
    taskQueue,
    args,
  };
  return {
    spec: { intervals: [{ every: `${c.everyMinutes} minutes` as const }] },
    action,
    // a check still running when the next is due: skip it; a server that was down runs one check
    // (not every missed one) when it is back
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' as const },
  };
}

/**
 * Make the fleet check's schedule exist as configured (checkFleet `{repair: true}` every few
 * minutes: a lost host that comes back gets its sites converged). Like the nightly's: created,
 * updated (paused state and note kept) or left alone; safe to run any number of times.
 */
export async function ensureFleetCheckSchedule(
  client: Client,
  taskQueue: string,
  config: FleetCheckScheduleConfig = {},
): Promise<{ scheduleId: string; action: 'created' | 'updated' | 'unchanged' }> {
  const c = parseOrThrow(FleetCheckScheduleConfig, config, 'fleet check schedule');
  const want = desiredFleetCheck(c, taskQueue);
  const comparableWant = JSON.stringify({
    calendars: [],
    intervals: [c.everyMinutes * 60_000],
    type: 'startWorkflow',
    workflowType: want.action.workflowType,
    workflowId: want.action.workflowId,
    taskQueue: want.action.taskQueue,
    args: want.action.args,
    overlap: want.policies.overlap,
  });
  return ensureSchedule(client, c.scheduleId, want, comparableWant);
}

/** Created if absent, updated if its comparable form differs from `comparableWant`, else left alone. */
async function ensureSchedule(
  client: Client,
  scheduleId: string,
  want: Pick<Parameters<Client['schedule']['create']>[0], 'spec' | 'action' | 'policies'>,
  comparableWant: string,
): Promise<{ scheduleId: string; action: 'created' | 'updated' | 'unchanged' }> {
  const c = { scheduleId };
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
  if (comparable(current) === comparableWant) return { scheduleId: c.scheduleId, action: 'unchanged' };
  await handle.update((prev) => ({
    ...prev,
    ...want,
    state: { paused: prev.state.paused, note: prev.state.note },
  }));
  return { scheduleId: c.scheduleId, action: 'updated' };
}
