import type { Plan } from '../../schema/site';
import policies from './retentionPolicies.json';

/**
 * Which backups of a site to keep: grandfather-father-son, as pure logic (no I/O, no clock: `now`
 * is passed in), so the workflow can run it deterministically and the tests can run it over years.
 *
 * Rules, in order of precedence:
 * - the newest verified backup is always kept (however old it is: it may be the only good one);
 * - an unverified backup (no manifest, or verification failed or not finished) is kept while it
 *   is less than a day old (it may still be verifying, or ops may want to look at it), then pruned;
 * - a verified on-demand backup is kept for `onDemandDays`, a verified safety backup (taken by a
 *   restore before it overwrites the site) for `safetyDays`, whatever else was taken that day: the
 *   id of an on-demand backup was handed to whoever asked for it, and a safety backup is the way
 *   back from a restore that was a mistake;
 * - of the verified backups, one of each of the `daily` most recent days that have one is kept,
 *   likewise for the `weekly` most recent ISO weeks and the `monthly` most recent months (days,
 *   weeks and months in UTC): the newest scheduled backup of the period, or the newest of any kind
 *   when none of the period's backups is scheduled (a site backed up only on demand still gets its
 *   series). The scheduled series stays the one the nightly run took, so an on-demand or safety
 *   backup later in a day never displaces that night's backup. Periods are counted among those
 *   that have a backup, not on the calendar: when backups stop for a while, the older ones are
 *   not all aged out meanwhile;
 * - every other verified backup is pruned.
 * A backup dated in the future (a clock that was wrong) counts as the newest. A backup without a
 * kind (no manifest) counts as scheduled.
 */

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  /** Days an on-demand backup is kept, whatever the daily, weekly and monthly slots keep. */
  onDemandDays: number;
  /** Days a restore's safety backup is kept, likewise. */
  safetyDays: number;
}

/** Who took a backup: the nightly run, someone who asked (ops, billing), or a restore before it overwrote the site. */
export type BackupKind = 'scheduled' | 'on-demand' | 'safety';

/**
 * Days a deprovision's final backup (its DB snapshot and files archive) is kept, whatever the plan:
 * the nightly run removes older ones.
 */
export const FINAL_BACKUP_DAYS = 30;

/** The policies per plan, from retentionPolicies.json (the one place to change them). */
export const RETENTION: Readonly<Record<Plan, RetentionPolicy>> = policies;

export interface BackupEntry {
  backupId: string;
  /** When the backup was taken (ISO 8601). */
  at: string;
  verified: boolean;
  /** Absent: scheduled (a backup that never wrote its manifest has no kind, and is unverified anyway). */
  kind?: BackupKind;
}

export interface RetentionPlan {
  keep: { backupId: string; at: string; reasons: string[] }[];
  prune: { backupId: string; at: string; reason: string }[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function planRetention(
  backups: readonly BackupEntry[],
  policy: RetentionPolicy,
  now: Date,
): RetentionPlan {
  for (const [k, v] of Object.entries(policy))
    if (!Number.isInteger(v) || v < 0) throw new TypeError(`retention ${k} must be a whole number >= 0`);
  const ids = new Set<string>();
  for (const b of backups) {
    if (ids.has(b.backupId)) throw new TypeError(`backup ${b.backupId} is listed twice`);
    ids.add(b.backupId);
    if (Number.isNaN(Date.parse(b.at))) throw new TypeError(`backup ${b.backupId} has no valid time`);
  }
  // newest first; the id breaks ties so the result never depends on the input's order
  const sorted = [...backups].sort(
    (a, b) => Date.parse(b.at) - Date.parse(a.at) || (a.backupId < b.backupId ? 1 : -1),
  );
  const reasons = new Map<string, string[]>();
  const keep = (b: BackupEntry, why: string) =>
    reasons.set(b.backupId, [...(reasons.get(b.backupId) ?? []), why]);

  const good = sorted.filter((b) => b.verified);
  if (good[0]) keep(good[0], 'newest verified backup');
  for (const b of sorted)
    if (!b.verified && now.getTime() - Date.parse(b.at) < DAY_MS) keep(b, 'unverified, less than a day old');
  const keptFor: Partial<Record<BackupKind, number>> = {
    'on-demand': policy.onDemandDays,
    safety: policy.safetyDays,
  };
  for (const b of good) {
    const days = keptFor[b.kind ?? 'scheduled'];
    if (days === undefined) continue;
    const until = Date.parse(b.at) + days * DAY_MS;
    if (now.getTime() < until)
      keep(b, `${b.kind} backup, kept ${days} days (until ${new Date(until).toISOString().slice(0, 16)}Z)`);
  }

  const buckets: [string, number, (d: Date) => string][] = [
    ['daily', policy.daily, (d) => d.toISOString().slice(0, 10)],
    ['weekly', policy.weekly, isoWeek],
    ['monthly', policy.monthly, (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [name, count, period] of buckets) {
    // each period's one backup, periods newest first: its newest scheduled one, else its newest
    const chosen = new Map<string, BackupEntry>();
    for (const b of good) {
      const p = period(new Date(b.at));
      const had = chosen.get(p);
      if (!had || (!isScheduled(had) && isScheduled(b))) chosen.set(p, b);
    }
    for (const [p, b] of [...chosen].slice(0, count)) keep(b, `${name} ${p}`);
  }

  const plan: RetentionPlan = { keep: [], prune: [] };
  for (const b of sorted) {
    const why = reasons.get(b.backupId);
    if (why) plan.keep.push({ backupId: b.backupId, at: b.at, reasons: why });
    else
      plan.prune.push({
        backupId: b.backupId,
        at: b.at,
        reason: b.verified ? 'beyond the retention policy' : 'unverified and more than a day old',
      });
  }
  return plan;
}

function isScheduled(b: BackupEntry): boolean {
  return (b.kind ?? 'scheduled') === 'scheduled';
}

/** ISO 8601 week of a date, in UTC: `2026-W01` (weeks start on Monday; week 1 holds January 4th). */
export function isoWeek(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = day.getUTCDay() || 7; // Monday 1 … Sunday 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / DAY_MS + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
