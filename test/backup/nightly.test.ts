import type { Manifest } from '../../activities/backup/manifest';
import { ensureNightlyBackupSchedule } from '../../client/schedules';
import { backupSite, changePlan, type nightlyBackups } from '../../workflows';
import { backupIdFor, finalBackupName, nightlyBackupId } from '../../protocol/ids';
import { nightlyProgressQuery } from '../../protocol/nightlyBackups';
import { planRetention, RETENTION, type BackupEntry } from '../../workflows/lib/retention';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { recordHistory } from '../support/histories';
import { withWorker } from '../support/temporal';
import { testbed } from '../../dev/fleet';
import { createSmallSite, removeSmallSite, waitUntilListedActive, type SmallSite } from './smallSites';

/**
 * The nightly Schedule and its fan-out, and retention applied by a real backup to a site's real
 * backup directory, on the bed (small real sites: a database, a files directory, a site workflow).
 */

let bed: Bed;
const run = Date.now().toString(36);

beforeAll(async () => {
  bed = await openBed();
});
afterAll(() => bed?.close());

test("the schedule is ensured (create, unchanged, update), fires, backs up every site within the per-DB-host bound, lists the sites it skips, keeps the day's on-demand backup, removes final backups past 30 days, and a re-run duplicates nothing", async () => {
  const scheduleId = `nightly-test-${run}`;
  const sites: SmallSite[] = [];
  // a deprovisioned site's final backups (DB snapshots on host2 and host3, files archive on host1): 31 days old and fresh
  const gone = `gone-${run}`;
  const goneDb = `site_gone_${run}`;
  const old = finalBackupName(new Date(Date.now() - 31 * 86_400_000));
  const fresh = finalBackupName(new Date());
  await withWorker(bed, async (taskQueue) => {
    try {
      for (let i = 0; i < 5; i++)
        sites.push(
          await createSmallSite(bed.env.client, bed.fleet, taskQueue, {
            siteId: `n${run}-${i}`,
            dbHost: i < 4 ? 'host2' : 'host3',
            storageHost: 'host1',
          }),
        );
      // one site whose database is gone: its backup fails, the night goes on
      const broken = await createSmallSite(bed.env.client, bed.fleet, taskQueue, {
        siteId: `n${run}-broken`,
        dbHost: 'host3',
        storageHost: 'host1',
      });
      sites.push(broken);
      testbed.exec('host3', ['mariadb', '-e', `DROP DATABASE site_n${run}_broken`]);
      // a failed and a suspended site: not backed up, and listed with why
      const skippedSites: SmallSite[] = [];
      for (const state of ['failed', 'suspended'] as const)
        skippedSites.push(
          await createSmallSite(bed.env.client, bed.fleet, taskQueue, {
            siteId: `n${run}-${state}`,
            dbHost: 'host3',
            storageHost: 'host1',
            state,
          }),
        );
      sites.push(...skippedSites);
      const ids = sites.map((s) => s.siteId);
      const skippedIds = skippedSites.map((s) => s.siteId);
      await waitUntilListedActive(
        bed.env.client,
        ids.filter((id) => !skippedIds.includes(id)),
      );
      await eventually(
        async () =>
          (
            await bed.env.client.workflow.count(
              `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND State IN ('failed', 'suspended') AND SiteId IN (${skippedIds.map((id) => `'${id}'`).join(', ')})`,
            )
          ).count === 2,
        { what: 'visibility to list the failed and the suspended site', timeoutMs: 30_000 },
      );
      // earlier the same day, an on-demand backup of the first site (its id handed to billing, say)
      const onDemand = await bed.env.client.workflow.execute(backupSite, {
        taskQueue,
        workflowId: `backup-${ids[0]}-on-demand`,
        args: [{ siteId: ids[0]!, kind: 'on-demand', triggeredBy: 'test' }],
      });
      testbed.exec('host1', [
        'sh',
        '-c',
        'mkdir -p "$1" && touch "$1/$2.tar.gz" "$1/$3.tar.gz"',
        'qm',
        `/srv/qm/archive/${gone}`,
        old,
        fresh,
      ]);
      testbed.exec('host2', [
        'sh',
        '-c',
        'mkdir -p "$1" && for n in "$2" "$3"; do touch "$1/$n.sql.gz" "$1/$n.sql.gz.sha256"; done',
        'qm',
        `/srv/qm/snapshots/${goneDb}`,
        old,
        fresh,
      ]);
      testbed.exec('host3', [
        'sh',
        '-c',
        'mkdir -p "$1" && touch "$1/$2.sql.gz" "$1/$2.sql.gz.sha256"',
        'qm',
        `/srv/qm/snapshots/${goneDb}`,
        old,
      ]);

      const config = { scheduleId, windowMinutes: 0, perDbHost: 1, sites: ids };
      expect((await ensureNightlyBackupSchedule(bed.env.client, taskQueue, config)).action).toBe('created');
      expect((await ensureNightlyBackupSchedule(bed.env.client, taskQueue, config)).action).toBe('unchanged');
      const wanted = { ...config, perDbHost: 2 };
      expect((await ensureNightlyBackupSchedule(bed.env.client, taskQueue, wanted)).action).toBe('updated');
      expect((await ensureNightlyBackupSchedule(bed.env.client, taskQueue, wanted)).action).toBe('unchanged');
      const schedule = bed.env.client.schedule.getHandle(scheduleId);
      const described = await schedule.describe();
      expect(described.spec.calendars?.[0]?.hour?.[0]?.start).toBe(1);
      expect(described.action.type === 'startWorkflow' && described.action.args).toEqual([
        { windowMinutes: 0, perDbHost: 2, triggeredBy: 'schedule', sites: ids },
      ]);

      let lastNight = '';
      const fired = async () => {
        const seen = (await schedule.describe()).info.recentActions.length;
        await schedule.trigger();
        lastNight = await eventually(
          async () => {
            const last = (await schedule.describe()).info.recentActions[seen];
            return last?.action.type === 'startWorkflow' && last.action.workflow.workflowId;
          },
          { what: `schedule ${scheduleId} to start a night`, timeoutMs: 180_000 },
        );
        return bed.env.client.workflow.getHandle<typeof nightlyBackups>(lastNight).result();
      };

      const night = await fired();
      await recordHistory(lastNight, 'nightlyBackups');
      const good = ids.filter((id) => id !== broken.siteId && !skippedIds.includes(id));
      expect(night.succeeded).toEqual([...good].sort());
      expect(night.failed).toEqual([
        {
          siteId: broken.siteId,
          workflowId: nightlyBackupId(broken.siteId, night.night),
          error: expect.stringContaining(`there is no database site_n${run}_broken`),
        },
      ]);
      // the sites not backed up, and why: in the result, the progress query and the memo's summary
      expect(night.notActive).toEqual(skippedIds);
      expect(night.skipped).toEqual([
        {
          siteId: skippedIds[0],
          state: 'failed',
          reason: expect.stringMatching(/^failed: ops must repair it/),
        },
        { siteId: skippedIds[1], state: 'suspended', reason: expect.stringMatching(/^suspended: /) },
      ]);
      const nightHandle = bed.env.client.workflow.getHandle<typeof nightlyBackups>(lastNight);
      expect((await nightHandle.query(nightlyProgressQuery)).skipped).toEqual(night.skipped);
      expect(((await nightHandle.describe()).memo as { summary: string }).summary).toContain(
        `2 not backed up: 1 failed (${skippedIds[0]}), 1 suspended (${skippedIds[1]})`,
      );
      for (const id of skippedIds)
        expect(testbed.exec('host1', ['ls', '-A', '/srv/qm/backups']).split('\n')).not.toContain(id);
      // the final backups past 30 days are gone from every host that had them, the fresh ones stay
      expect(night.finalBackups.problems).toEqual([]);
      expect(night.finalBackups.removed).toEqual(
        expect.arrayContaining([
          `host1:/srv/qm/archive/${gone}/${old}.tar.gz`,
          `host2:/srv/qm/snapshots/${goneDb}/${old}.sql.gz`,
          `host2:/srv/qm/snapshots/${goneDb}/${old}.sql.gz.sha256`,
          `host3:/srv/qm/snapshots/${goneDb}/${old}.sql.gz`,
          `host3:/srv/qm/snapshots/${goneDb}/${old}.sql.gz.sha256`,
        ]),
      );
      expect(night.finalBackups.removed.filter((p) => p.includes(fresh))).toEqual([]);
      expect(testbed.exec('host1', ['ls', `/srv/qm/archive/${gone}`])).toBe(`${fresh}.tar.gz\n`);
      expect(testbed.exec('host2', ['ls', `/srv/qm/snapshots/${goneDb}`])).toBe(
        `${fresh}.sql.gz\n${fresh}.sql.gz.sha256\n`,
      );
      expect(
        testbed.exec('host3', [
          'sh',
          '-c',
          'test -e "$1" && echo there || echo gone',
          'qm',
          `/srv/qm/snapshots/${goneDb}`,
        ]),
      ).toBe('gone\n');
      // the nightly backup after the on-demand one of the same day kept both
      const afterOnDemand = await bed.env.client.workflow
        .getHandle<typeof backupSite>(nightlyBackupId(ids[0]!, night.night))
        .result();
      expect(afterOnDemand.retention).toMatchObject({ pruned: [] });
      expect(afterOnDemand.retention.kept.sort()).toEqual([onDemand.backupId, afterOnDemand.backupId].sort());
      expect(night.maxConcurrentPerDbHost).toEqual({ host2: 2, host3: 2 }); // 4 sites on host2, 2 on host3
      // the failed backup is a failed workflow ops can open
      const failed = await bed.env.client.workflow
        .getHandle(nightlyBackupId(broken.siteId, night.night))
        .describe();
      expect(failed.status.name).toBe('FAILED');
      // every other site has a verified backup, recorded as its last good one
      for (const id of good) {
        const record = (await bed.env.client.workflow.getHandle(siteWorkflowId(id)).query(siteQuery)).record;
        expect(record.lastGoodBackup?.backupId).toMatch(/^\d{8}T\d{6}Z-[0-9a-z]{6}$/);
        const m = JSON.parse(
          testbed.exec('host1', [
            'cat',
            `/srv/qm/backups/${id}/${record.lastGoodBackup!.backupId}/manifest.json`,
          ]),
        ) as Manifest;
        expect([m.verified, m.kind, m.database.rowCounts]).toEqual([true, 'scheduled', { node: 50 }]);
      }

      // the same night again: nothing backed up twice, the failed one tried again
      const again = await fired();
      expect(again.night).toBe(night.night);
      expect(again.alreadyDone).toEqual([...good].sort());
      expect(again.succeeded).toEqual([]);
      expect(again.failed.map((f) => f.siteId)).toEqual([broken.siteId]);
      for (const id of good)
        expect(
          testbed
            .exec('host1', ['ls', `/srv/qm/backups/${id}`])
            .split('\n')
            .filter(Boolean),
        ).toHaveLength(id === ids[0] ? 2 : 1); // the first site: the on-demand backup and the night's
    } finally {
      await bed.env.client.schedule
        .getHandle(scheduleId)
        .delete()
        .catch(() => undefined);
      for (const s of sites) await removeSmallSite(bed.env.client, bed.fleet, s);
      testbed.exec('host1', ['rm', '-rf', '--', `/srv/qm/archive/${gone}`, `/srv/qm/snapshots/${goneDb}`]);
      for (const h of ['host2', 'host3']) testbed.exec(h, ['rm', '-rf', '--', `/srv/qm/snapshots/${goneDb}`]);
    }
  });
}, 240_000);

test('retention over 40 simulated nights: a real backup prunes the real backup directory to exactly the plan', async () => {
  const siteId = `r${run}`;
  await withSeededSite(siteId, async (taskQueue, seeded) => {
    const { result, everything, left } = await backupAndList(taskQueue, siteId, seeded);
    // what the policy says, for everything that was there when retention ran
    const expected = planRetention(everything, RETENTION.starter, new Date(result.createdAt));
    expect(left).toEqual(expected.keep.map((k) => k.backupId).sort());
    expect(result.retention.kept.sort()).toEqual(left);
    expect(result.retention.pruned.sort()).toEqual(expected.prune.map((p) => p.backupId).sort());
    // by hand: today's real one and the 6 nights before (7 daily), the young failed one; the old
    // failed and the unfinished ones gone; at most 4 weekly and 3 monthly more
    expect(left).toContain(result.backupId);
    for (let n = 1; n <= 6; n++) expect(left).toContain(seeded[n - 1]!.backupId);
    expect(left).toContain(seeded[40]!.backupId);
    expect(left).not.toContain(seeded[41]!.backupId);
    expect(left).not.toContain(seeded[42]!.backupId);
    expect(left.length).toBeGreaterThanOrEqual(7 + 1 + 2);
    expect(left.length).toBeLessThanOrEqual(7 + 1 + 4 + 3);
    // and it is visible: the memo of the backup workflow lists them
    const memo = (await bed.env.client.workflow.getHandle(`backup-${siteId}`).describe()).memo as {
      retention: { kept: string[]; pruned: string[] };
    };
    expect(memo.retention.pruned.sort()).toEqual(result.retention.pruned);
  });
}, 120_000);

test('a plan change: recorded under the site lock, and the next backup prunes by the new plan', async () => {
  const siteId = `p${run}`;
  await withSeededSite(siteId, async (taskQueue, seeded) => {
    const changeId = `change-plan-${siteId}`;
    const changed = await bed.env.client.workflow.execute(changePlan, {
      taskQueue,
      workflowId: changeId,
      args: [{ siteId, plan: 'enterprise', triggeredBy: 'test' }],
    });
    expect(changed).toEqual({
      siteId,
      status: 'changed',
      plan: 'enterprise',
      previous: 'starter',
      retention: RETENTION.enterprise,
    });
    await recordHistory(changeId, 'changePlan');
    const { record } = await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
    expect(record.spec?.plan).toBe('enterprise');
    expect(record.lastOperation).toBe(changeId);
    // the same change again finds it made
    const again = await bed.env.client.workflow.execute(changePlan, {
      taskQueue,
      workflowId: `${changeId}-again`,
      args: [{ siteId, plan: 'enterprise' }],
    });
    expect(again).toMatchObject({ status: 'unchanged', previous: 'enterprise' });

    const { result, everything, left } = await backupAndList(taskQueue, siteId, seeded);
    const byNewPlan = planRetention(everything, RETENTION.enterprise, new Date(result.createdAt));
    const byOldPlan = planRetention(everything, RETENTION.starter, new Date(result.createdAt));
    expect(left).toEqual(byNewPlan.keep.map((k) => k.backupId).sort());
    // enterprise keeps 30 daily: nights the starter plan (7 daily) would have pruned are still there
    expect(left.length).toBeGreaterThan(byOldPlan.keep.length);
    for (let n = 1; n <= 29; n++) expect(left).toContain(seeded[n - 1]!.backupId);
  });
}, 120_000);

/** A small real site (DB on host2, files and backups on host1) with seeded backups, on a worker, while `fn` runs. */
async function withSeededSite(
  siteId: string,
  fn: (taskQueue: string, seeded: Awaited<ReturnType<typeof seedBackups>>) => Promise<void>,
) {
  await withWorker(bed, async (taskQueue) => {
    const small = await createSmallSite(bed.env.client, bed.fleet, taskQueue, {
      siteId,
      dbHost: 'host2',
      storageHost: 'host1',
    });
    try {
      await fn(taskQueue, await seedBackups(siteId));
    } finally {
      await removeSmallSite(bed.env.client, bed.fleet, small);
    }
  });
}

/** A real backup of the site (retention runs in it); what was there for it, and what is left on host1. */
async function backupAndList(taskQueue: string, siteId: string, seeded: BackupEntry[]) {
  const result = await bed.env.client.workflow.execute(backupSite, {
    taskQueue,
    workflowId: `backup-${siteId}`,
    args: [{ siteId, kind: 'scheduled' }],
  });
  const everything = [...seeded, { backupId: result.backupId, at: result.createdAt, verified: true }];
  const left = testbed
    .exec('host1', ['ls', `/srv/qm/backups/${siteId}`])
    .split('\n')
    .filter(Boolean)
    .sort();
  return { result, everything, left };
}

/**
 * Into the site's real backup directory on host1: 40 nights of verified backups before today,
 * two failed ones (3 and 50 hours old) and one that never finished (30 hours old).
 */
async function seedBackups(siteId: string) {
  const now = Date.now();
  const seeded: { backupId: string; at: string; verified: boolean; manifest: boolean }[] = [];
  for (let n = 1; n <= 40; n++) {
    const at = new Date(now - n * 86_400_000);
    seeded.push({
      backupId: backupIdFor(at, `seed-${n}`),
      at: at.toISOString(),
      verified: true,
      manifest: true,
    });
  }
  const hoursAgo = (h: number) => new Date(now - h * 3_600_000);
  seeded.push({
    backupId: backupIdFor(hoursAgo(3), 'young-bad'),
    at: hoursAgo(3).toISOString(),
    verified: false,
    manifest: true,
  });
  seeded.push({
    backupId: backupIdFor(hoursAgo(50), 'old-bad'),
    at: hoursAgo(50).toISOString(),
    verified: false,
    manifest: true,
  });
  seeded.push({
    backupId: backupIdFor(hoursAgo(30), 'unfinished'),
    at: hoursAgo(30).toISOString(),
    verified: false,
    manifest: false,
  });
  const lines = seeded.map((s) => {
    const manifest = s.manifest
      ? Buffer.from(JSON.stringify(fakeManifest(siteId, s))).toString('base64')
      : '-';
    return `${s.backupId} ${manifest}`;
  });
  await bed.fleet.pool.exec(
    'host1',
    [
      'bash',
      '-c',
      'while read -r id m; do mkdir -p "$1/$id"; [ "$m" = - ] || base64 -d <<<"$m" >"$1/$id/manifest.json"; done',
      'qm',
      `/srv/qm/backups/${siteId}`,
    ],
    { stdin: lines.join('\n') + '\n' },
  );
  return seeded;
}

function fakeManifest(siteId: string, s: { backupId: string; at: string; verified: boolean }): Manifest {
  const sha = 'a'.repeat(64);
  return {
    version: 1,
    siteId,
    backupId: s.backupId,
    kind: 'scheduled',
    createdAt: s.at,
    workflowId: 'seeded-by-test',
    dbHost: 'host2',
    storageHost: 'host1',
    database: { file: 'db.sql.gz', bytes: 1, sha256: sha, rowCounts: {}, changedDuringDump: {} },
    files: {
      file: 'files.tar.gz',
      bytes: 1,
      sha256: sha,
      entries: 1,
      files: 0,
      fileBytes: 0,
      treeDigest: sha,
    },
    verified: s.verified,
  };
}
