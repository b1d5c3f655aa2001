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
 * - of the verified backups, the newest of each of the `daily` most recent days that have one is
 *   kept, likewise for the `weekly` most recent ISO weeks and the `monthly` most recent months
 *   (days, weeks and months in UTC). Periods are counted among those that have a backup, not on
 *   the calendar: when backups stop for a while, the older ones are not all aged out meanwhile;
 * - every other verified backup is pruned.
 * A backup dated in the future (a clock that was wrong) counts as the newest.
 */

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
}

/** The policies per plan, from retentionPolicies.json (the one place to change them). */
export const RETENTION: Readonly<Record<Plan, RetentionPolicy>> = policies;

export interface BackupEntry {
  backupId: string;
  /** When the backup was taken (ISO 8601). */
  at: string;
  verified: boolean;
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

  const buckets: [string, number, (d: Date) => string][] = [
    ['daily', policy.daily, (d) => d.toISOString().slice(0, 10)],
    ['weekly', policy.weekly, isoWeek],
    ['monthly', policy.monthly, (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [name, count, period] of buckets) {
    const seen = new Set<string>();
    for (const b of good) {
      const p = period(new Date(b.at));
      if (seen.has(p)) continue; // an older backup of a period already kept
      if (seen.size >= count) break;
      seen.add(p);
      keep(b, `${name} ${p}`);
    }
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

/** ISO 8601 week of a date, in UTC: `2026-W01` (weeks start on Monday; week 1 holds January 4th). */
export function isoWeek(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = day.getUTCDay() || 7; // Monday 1 … Sunday 7
  day.setUTCDate(day.getUTCDate() + 4 - weekday); // the Thursday of this week decides its year
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / DAY_MS + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
