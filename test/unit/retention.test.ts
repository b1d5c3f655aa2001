import {
  isoWeek,
  planRetention,
  RETENTION,
  type BackupEntry,
  type BackupKind,
  type RetentionPolicy,
} from '../../workflows/lib/retention';

/** Grandfather-father-son retention, pure: dates are hand-checked, simulations run over years. */

const at = (day: string, time = '02:00:00') => `${day}T${time}.000Z`;
const id = (iso: string) => iso.replace(/[-:]/g, '').slice(0, 15) + 'Z-aaaaaa';
const backup = (iso: string, verified = true, kind?: BackupKind): BackupEntry => ({
  backupId: id(iso),
  at: iso,
  verified,
  ...(kind ? { kind } : {}),
});
/** A policy by its slots; on-demand and safety backups kept the documented 14 and 7 days. */
const slots = (daily: number, weekly = 0, monthly = 0): RetentionPolicy => ({
  daily,
  weekly,
  monthly,
  onDemandDays: 14,
  safetyDays: 7,
});

/** One verified backup a day at 02:00 UTC, from `first` for `days` days. */
function daily(first: string, days: number): BackupEntry[] {
  const t0 = Date.parse(at(first));
  return Array.from({ length: days }, (_, i) => backup(new Date(t0 + i * 86_400_000).toISOString()));
}

const keptDays = (plan: ReturnType<typeof planRetention>) => plan.keep.map((k) => k.at.slice(0, 10));

test('the plans are the documented ones', () => {
  expect(RETENTION).toEqual({
    starter: { daily: 7, weekly: 4, monthly: 3, onDemandDays: 14, safetyDays: 7 },
    business: { daily: 14, weekly: 8, monthly: 12, onDemandDays: 14, safetyDays: 7 },
    enterprise: { daily: 30, weekly: 12, monthly: 24, onDemandDays: 14, safetyDays: 7 },
  });
});

test('nothing to plan for no backups', () => {
  expect(planRetention([], RETENTION.starter, new Date())).toEqual({ keep: [], prune: [] });
});

test('60 nightly backups on starter: 7 days, 4 ISO weeks, 3 months, hand-checked', () => {
  // 2026-01-01 .. 2026-03-01 (a Sunday); ISO weeks end on Sundays
  const backups = daily('2026-01-01', 60);
  const plan = planRetention(backups, RETENTION.starter, new Date(at('2026-03-01', '03:00:00')));
  expect(keptDays(plan)).toEqual([
    '2026-03-01', // newest verified, daily, weekly W09, monthly 2026-03
    '2026-02-28', // daily, monthly 2026-02
    '2026-02-27',
    '2026-02-26',
    '2026-02-25',
    '2026-02-24',
    '2026-02-23', // the 7th day
    '2026-02-22', // weekly W08
    '2026-02-15', // weekly W07
    '2026-02-08', // weekly W06
    '2026-01-31', // monthly 2026-01
  ]);
  expect(plan.keep[0]!.reasons).toEqual([
    'newest verified backup',
    'daily 2026-03-01',
    'weekly 2026-W09',
    'monthly 2026-03',
  ]);
  expect(plan.prune).toHaveLength(49);
  expect(plan.prune.every((p) => p.reason === 'beyond the retention policy')).toBe(true);
});

test('several scheduled backups a day: only the newest of the day counts', () => {
  const backups = [
    backup(at('2026-05-10', '01:00:00')),
    backup(at('2026-05-10', '13:00:00')), // a second scheduled run that day
    backup(at('2026-05-09', '01:00:00')),
  ];
  const plan = planRetention(backups, slots(2, 0, 0), new Date(at('2026-05-11')));
  expect(plan.keep.map((k) => k.at)).toEqual([at('2026-05-10', '13:00:00'), at('2026-05-09', '01:00:00')]);
  expect(plan.prune.map((p) => p.at)).toEqual([at('2026-05-10', '01:00:00')]);
});

test('an on-demand backup is kept 14 days, whatever the same day holds (the nightly after it, a second on-demand)', () => {
  const onDemand = backup(at('2026-05-10', '09:00:00'), true, 'on-demand');
  const second = backup(at('2026-05-10', '11:00:00'), true, 'on-demand');
  const nightly = backup(at('2026-05-10', '23:30:00'), true, 'scheduled');
  const everything = [onDemand, second, nightly];
  const plan = planRetention(everything, slots(7, 4, 3), new Date(at('2026-05-10', '23:31:00')));
  expect(plan.prune).toEqual([]);
  expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([
    [nightly.backupId, ['newest verified backup', 'daily 2026-05-10', 'weekly 2026-W19', 'monthly 2026-05']],
    [second.backupId, ['on-demand backup, kept 14 days (until 2026-05-24T11:00Z)']],
    [onDemand.backupId, ['on-demand backup, kept 14 days (until 2026-05-24T09:00Z)']],
  ]);
  // the day it expires, it goes (the nightly of that day holds the slot)
  const later = planRetention(everything, slots(7, 4, 3), new Date(at('2026-05-24', '09:00:00')));
  expect(later.prune.map((p) => p.backupId)).toEqual([onDemand.backupId]);
  expect(later.keep.map((k) => k.backupId)).toEqual([nightly.backupId, second.backupId]);
});

test("an on-demand or safety backup later in a day never displaces that night's scheduled backup", () => {
  const nightly = backup(at('2026-05-10', '01:00:00'), true, 'scheduled');
  const safety = backup(at('2026-05-10', '15:00:00'), true, 'safety');
  const plan = planRetention([nightly, safety], slots(7), new Date(at('2026-05-10', '15:30:00')));
  expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([
    [safety.backupId, ['newest verified backup', 'safety backup, kept 7 days (until 2026-05-17T15:00Z)']],
    [nightly.backupId, ['daily 2026-05-10']],
  ]);
  // 8 days on, with a nightly every night since: the safety backup has gone, the night's stays
  const since = daily('2026-05-11', 8).map((b) => ({ ...b, kind: 'scheduled' as const }));
  const on = planRetention([nightly, safety, ...since], slots(9), new Date(at('2026-05-18', '03:00:00')));
  expect(on.prune).toEqual([
    { backupId: safety.backupId, at: safety.at, reason: 'beyond the retention policy' },
  ]);
  expect(on.keep.map((k) => k.backupId)).toContain(nightly.backupId);
});

test('a site backed up only on demand still gets its daily, weekly and monthly series', () => {
  // one on-demand backup a week for a year: beyond 14 days, the slots keep the newest of each period
  const t0 = Date.parse(at('2025-06-02', '10:00:00'));
  const weekly = Array.from({ length: 52 }, (_, i) =>
    backup(new Date(t0 + i * 7 * 86_400_000).toISOString(), true, 'on-demand'),
  );
  const now = new Date(Date.parse(weekly.at(-1)!.at) + 3_600_000);
  const plan = planRetention(weekly, slots(7, 4, 3), now);
  const byReason = (prefix: string) => plan.keep.filter((k) => k.reasons.some((r) => r.startsWith(prefix)));
  expect(byReason('on-demand backup')).toHaveLength(2); // this week's and last week's
  expect(byReason('daily')).toHaveLength(7);
  expect(byReason('weekly')).toHaveLength(4);
  expect(byReason('monthly')).toHaveLength(3);
});

test('a scheduled backup holds its slot even when an older one of the period is on-demand', () => {
  // the week's slot: the newest scheduled backup of the week, not the newest backup
  const monday = backup(at('2026-05-04', '01:00:00'), true, 'scheduled');
  const tuesday = backup(at('2026-05-05', '01:00:00'), true, 'scheduled');
  const wednesday = backup(at('2026-05-06', '10:00:00'), true, 'on-demand');
  const plan = planRetention([monday, tuesday, wednesday], slots(0, 1, 0), new Date(at('2026-06-30')));
  expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([
    [wednesday.backupId, ['newest verified backup']],
    [tuesday.backupId, ['weekly 2026-W19']],
  ]);
});

test('an unverified on-demand backup is not kept for 14 days: it goes after a day, like any unverified one', () => {
  const bad = backup(at('2026-05-10', '09:00:00'), false, 'on-demand');
  const plan = planRetention([bad], slots(7), new Date(at('2026-05-11', '10:00:00')));
  expect(plan.prune.map((p) => p.reason)).toEqual(['unverified and more than a day old']);
});

test('the newest verified backup is never pruned, however old, even with a zero policy', () => {
  const old = backup(at('2025-01-01'));
  const newer = [backup(at('2026-06-01'), false), backup(at('2026-06-02'), false)];
  const now = new Date(at('2026-06-03', '12:00:00'));
  for (const policy of [RETENTION.starter, slots(0, 0, 0)]) {
    const plan = planRetention([...newer, old], policy, now);
    expect(plan.keep).toEqual([
      { backupId: old.backupId, at: old.at, reasons: expect.arrayContaining(['newest verified backup']) },
    ]);
    expect(plan.prune.map((p) => p.reason)).toEqual([
      'unverified and more than a day old',
      'unverified and more than a day old',
    ]);
  }
});

test('when the newest backups failed verification, the newest good one before them stays', () => {
  // the latest two failed verification: the one before them is what a restore would use
  const backups = [
    ...daily('2026-04-01', 10),
    backup(at('2026-04-11'), false),
    backup(at('2026-04-12'), false),
  ];
  const plan = planRetention(backups, slots(1, 0, 0), new Date(at('2026-04-12', '06:00:00')));
  expect(plan.keep.map((k) => [k.at.slice(0, 10), k.reasons])).toEqual([
    ['2026-04-12', ['unverified, less than a day old']],
    ['2026-04-10', ['newest verified backup', 'daily 2026-04-10']],
  ]);
});

test('unverified backups are kept for exactly a day', () => {
  const t = Date.parse(at('2026-02-01', '00:00:00'));
  const young = { backupId: 'young', at: new Date(t - 86_400_000 + 1).toISOString(), verified: false };
  const dayOld = { backupId: 'dayold', at: new Date(t - 86_400_000).toISOString(), verified: false };
  const plan = planRetention([young, dayOld], RETENTION.starter, new Date(t));
  expect(plan.keep.map((k) => k.backupId)).toEqual(['young']);
  expect(plan.prune).toEqual([
    { backupId: 'dayold', at: dayOld.at, reason: 'unverified and more than a day old' },
  ]);
});

test('a backup dated in the future counts as the newest', () => {
  const future = backup(at('2030-01-01'));
  const plan = planRetention(
    [...daily('2026-01-01', 3), future],
    slots(1, 0, 0),
    new Date(at('2026-01-03', '05:00:00')),
  );
  expect(plan.keep.map((k) => k.backupId)).toEqual([future.backupId]);
});

test('the result does not depend on the order of the input', () => {
  const backups = daily('2025-10-01', 120);
  const now = new Date(at('2026-01-28', '03:00:00'));
  const a = planRetention(backups, RETENTION.business, now);
  const b = planRetention([...backups].reverse(), RETENTION.business, now);
  const shuffled = [...backups].sort((x, y) =>
    x.backupId.split('').reverse().join('') < y.backupId.split('').reverse().join('') ? -1 : 1,
  );
  expect(b).toEqual(a);
  expect(planRetention(shuffled, RETENTION.business, now)).toEqual(a);
});

test('bad input is refused', () => {
  const b = backup(at('2026-01-01'));
  expect(() => planRetention([b, b], RETENTION.starter, new Date())).toThrow(/listed twice/);
  expect(() => planRetention([{ ...b, at: 'yesterday' }], RETENTION.starter, new Date())).toThrow(
    /no valid time/,
  );
  expect(() => planRetention([b], { ...slots(1), daily: -1 }, new Date())).toThrow(/daily/);
  expect(() => planRetention([b], { ...slots(1), daily: 1.5 }, new Date())).toThrow(/daily/);
  expect(() => planRetention([b], { ...slots(1), onDemandDays: -1 }, new Date())).toThrow(/onDemandDays/);
});

/**
 * What the nightly workflow does: each night a new backup (verified), then prune by the plan.
 * Pruning every night must end where planning once over every backup ever taken ends (GFS is
 * stable under repetition), and hold the policy's invariants every single night.
 */
function simulate(plan: keyof typeof RETENTION, nights: number, failEvery = 0) {
  const policy = RETENTION[plan];
  const t0 = Date.parse(at('2024-01-01'));
  let kept: BackupEntry[] = [];
  const all: BackupEntry[] = [];
  for (let n = 0; n < nights; n++) {
    const taken = new Date(t0 + n * 86_400_000).toISOString();
    const b = backup(taken, !(failEvery && n % failEvery === failEvery - 1));
    all.push(b);
    kept.push(b);
    const now = new Date(Date.parse(taken) + 3_600_000);
    const result = planRetention(kept, policy, now);
    const newestGood = [...kept].reverse().find((k) => k.verified);
    if (newestGood) expect(result.keep.map((k) => k.backupId)).toContain(newestGood.backupId);
    expect(
      result.keep.filter((k) => kept.find((x) => x.backupId === k.backupId)!.verified).length,
    ).toBeLessThanOrEqual(policy.daily + policy.weekly + policy.monthly);
    const keepIds = new Set(result.keep.map((k) => k.backupId));
    kept = kept.filter((k) => keepIds.has(k.backupId));
  }
  return { kept, all, policy, now: new Date(Date.parse(all.at(-1)!.at) + 3_600_000) };
}

test.each(['starter', 'business', 'enterprise'] as const)(
  '%s: three years of nightly pruning keeps exactly what one plan over every backup keeps',
  (plan) => {
    const { kept, all, policy, now } = simulate(plan, 3 * 365);
    const once = planRetention(all, policy, now);
    expect(kept.map((k) => k.backupId).reverse()).toEqual(once.keep.map((k) => k.backupId));
    // the daily ones are the last `daily` nights, and the oldest kept is about `monthly` months back
    const days = keptDays(once);
    expect(days.slice(0, policy.daily)).toEqual(
      Array.from({ length: policy.daily }, (_, i) =>
        new Date(Date.parse(all.at(-1)!.at) - i * 86_400_000).toISOString().slice(0, 10),
      ),
    );
    const oldest = new Date(once.keep.at(-1)!.at);
    const monthsBack =
      (now.getUTCFullYear() - oldest.getUTCFullYear()) * 12 + now.getUTCMonth() - oldest.getUTCMonth();
    expect(monthsBack).toBe(policy.monthly - 1);
  },
);

test('nightly pruning with every fifth backup failing verification: failed ones go after a day', () => {
  const { kept } = simulate('starter', 120, 5);
  const unverified = kept.filter((k) => !k.verified);
  // only the newest night's failure can still be there (less than a day old)
  expect(unverified.length).toBeLessThanOrEqual(1);
  if (unverified[0]) expect(unverified[0]).toBe(kept.at(-1));
});

test('ISO weeks at year boundaries', () => {
  expect(isoWeek(new Date('2021-01-03T12:00:00Z'))).toBe('2020-W53');
  expect(isoWeek(new Date('2021-01-04T00:00:00Z'))).toBe('2021-W01');
  expect(isoWeek(new Date('2024-12-30T00:00:00Z'))).toBe('2025-W01');
  expect(isoWeek(new Date('2026-01-01T00:00:00Z'))).toBe('2026-W01');
  expect(isoWeek(new Date('2026-03-01T23:59:59Z'))).toBe('2026-W09');
  expect(isoWeek(new Date('2026-03-02T00:00:00Z'))).toBe('2026-W10');
});
