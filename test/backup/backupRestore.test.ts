import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Manifest } from '../../activities/backup/manifest';
import type { Placement } from '../../schema/site';
import { backupSite, deprovisionSite, provisionSite, restoreSite } from '../../workflows';
import { rootMessage } from '../../workflows/lib/input';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { openBed, type Bed } from '../support/bed';
import { fetchSite, siteLeftovers, testSite } from '../support/site';
import { recordHistory } from '../support/histories';
import { startWorker, uniqueTaskQueue, type FileWorker } from '../support/temporal';
import { testbed } from '../../dev/fleet';
import { runActivity } from '../workflows';

/**
 * Backups and restores on the real bed, of a site provisioned through provisionSite (test
 * profile): the database on its DB host, the files on the storage host, the proxy in front.
 * Every outcome is read from the hosts directly (`testbed exec`, bypassing our SSH code).
 */

let bed: Bed;
const site = testSite({ appServers: 1 });
const { siteId } = site;
const db = `site_${siteId.replace(/-/g, '_')}`;
const files = `/srv/qm/files/${siteId}`;
let placement: Placement;
let worker: FileWorker;
let taskQueue: string;
/** The backup whose post-restore check is made to fail. */
let failCheckOf: string | undefined;

const uid = (what: string) => `${what}-${siteId}-${Date.now().toString(36)}`;

/** SQL as root on the site's DB host, outside our code. */
function sql(query: string): string[][] {
  return testbed
    .exec(placement.dbHost, ['mariadb', '--batch', '--skip-column-names', '-e', query])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

/** A shell script on the storage host, outside our code. */
function onStorage(script: string, ...args: string[]): string {
  return testbed.exec(placement.storageHost, ['bash', '-c', script, 'qm-test', ...args]);
}

/** What the site holds: every table's checksum and rows, every file's content hash (not the cron heartbeat). */
function siteState() {
  const tables = sql(
    `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='${db}' ORDER BY 1`,
  ).map((r) => r[0]!);
  return {
    tables: Object.fromEntries(
      tables.map((t) => [t, sql(`CHECKSUM TABLE \`${db}\`.\`${t}\` EXTENDED`)[0]![1]]),
    ),
    rows: Object.fromEntries(
      tables.map((t) => [t, Number(sql(`SELECT COUNT(*) FROM \`${db}\`.\`${t}\``)[0]![0])]),
    ),
    files: onStorage(
      `cd "$1" && find . -path ./.cron-heartbeat -prune -o \\( -type f -o -type l \\) -printf '%y %m %s %p\\n' | LC_ALL=C sort && find . -type f ! -name .cron-heartbeat -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`,
      files,
    ),
  };
}

function manifestOf(backupId: string): Manifest {
  return JSON.parse(onStorage('cat "$1"', `/srv/qm/backups/${siteId}/${backupId}/manifest.json`)) as Manifest;
}

async function failureOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return rootMessage(err);
}

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed, {
    taskQueue: uniqueTaskQueue('backup'),
    overrides: (real) => ({
      // the real check, then (when a test asks) a failure: what a restore that went wrong looks like
      async checkRestoredSite(input) {
        const result = await real.checkRestoredSite(input);
        if (failCheckOf === input.backupId)
          throw ApplicationFailure.nonRetryable('injected: the check failed', 'Injected');
        return result;
      },
    }),
  });
  taskQueue = worker.taskQueue;
  const r = await bed.env.client.workflow.execute(provisionSite, {
    taskQueue,
    workflowId: uid('provision'),
    args: [{ site, triggeredBy: 'test' }],
  });
  placement = r.placement;
  // data a customer would have: two tables with text that needs escaping, files with awkward names
  sql(
    `USE \`${db}\`; CREATE TABLE \`${db}\`.node (id INT PRIMARY KEY, title VARCHAR(200), body TEXT) ENGINE=InnoDB;` +
      ` CREATE TABLE \`${db}\`.civicrm_contact (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100)) ENGINE=InnoDB;` +
      ` INSERT INTO \`${db}\`.node SELECT seq, CONCAT('Title ', seq, ' it''s "quoted" \\\\ ;'), REPEAT(MD5(seq), 20) FROM seq_1_to_2000;` +
      ` INSERT INTO \`${db}\`.civicrm_contact (name) SELECT CONCAT('Contact ', seq) FROM seq_1_to_300;`,
  );
  onStorage(
    `cd "$1" && mkdir -p 'sub dir/deeper' && echo hello > a.txt && head -c 200000 /dev/urandom > 'sub dir/b.bin' &&
     printf 'x' > "sub dir/deeper/it's \\$(weird).txt" && ln -s a.txt link-to-a && chmod 600 a.txt`,
    files,
  );
}, 240_000);

afterAll(async () => {
  if (placement)
    await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue,
      workflowId: uid('deprovision'),
      args: [{ siteId, skipFinalBackup: true }],
    });
  await worker?.stop();
  if (placement) onStorage('rm -rf -- "$1"', `/srv/qm/backups/${siteId}`);
  expect(await siteLeftovers(bed.fleet, siteId)).toEqual([]);
  await bed?.close();
}, 180_000);

let goodBackup: string;

test('backup → the site is damaged → restore: tables, rows and files are exactly the backup again', async () => {
  const before = siteState();
  expect(before.rows).toEqual({ civicrm_contact: 300, node: 2000 });

  const backupWorkflowId = uid('backup');
  const backup = await bed.env.client.workflow.execute(backupSite, {
    taskQueue,
    workflowId: backupWorkflowId,
    args: [{ siteId, triggeredBy: 'test' }],
  });
  goodBackup = backup.backupId;

  // the manifest, as the storage host has it: verified, with the counts and checksums of what is there
  const manifest = manifestOf(backup.backupId);
  expect(manifest.verified).toBe(true);
  expect(manifest.verification?.problems).toEqual([]);
  expect(manifest.database.rowCounts).toEqual({ civicrm_contact: 300, node: 2000 });
  expect(manifest.database.changedDuringDump).toEqual({});
  expect(manifest.files.files).toBe(4); // a.txt, b.bin, it's $(weird).txt, .cron-heartbeat
  for (const a of [manifest.database, manifest.files]) {
    const [sum, size] = onStorage(
      'sha256sum <"$1" | cut -d" " -f1; stat -c %s "$1"',
      `/srv/qm/backups/${siteId}/${backup.backupId}/${a.file}`,
    )
      .trim()
      .split('\n');
    expect([sum, Number(size)]).toEqual([a.sha256, a.bytes]);
  }
  // written aside and renamed: no partials, no scratch database or directory left behind
  expect(
    onStorage('ls -A "$1"', `/srv/qm/backups/${siteId}/${backup.backupId}`)
      .split('\n')
      .filter(Boolean)
      .sort(),
  ).toEqual(['db.sql.gz', 'files.tar.gz', 'manifest.json']);
  expect(
    sql(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'qm\\_verify\\_%'`),
  ).toEqual([]);
  expect(onStorage('ls -A /srv/qm/backups/.scratch 2>/dev/null || true').trim()).toBe('');

  // the site's record, and the LastGoodBackup search attribute its workflow publishes
  const handle = bed.env.client.workflow.getHandle(siteWorkflowId(siteId));
  expect((await handle.query(siteQuery)).record.lastGoodBackup).toEqual({
    backupId: backup.backupId,
    at: backup.createdAt,
  });
  const attrs = (await handle.describe()).searchAttributes as Record<string, unknown[]>;
  expect(new Date(attrs.LastGoodBackup![0] as string).toISOString()).toBe(backup.createdAt);

  // damage: a table dropped, rows changed and deleted, a new table, files deleted, corrupted, added
  sql(
    `DROP TABLE \`${db}\`.civicrm_contact; UPDATE \`${db}\`.node SET title='vandalised' WHERE id < 10;` +
      ` DELETE FROM \`${db}\`.node WHERE id > 1500; CREATE TABLE \`${db}\`.junk (x INT);`,
  );
  onStorage(
    `cd "$1" && rm a.txt && printf 'CORRUPT' | dd of='sub dir/b.bin' bs=1 seek=1000 conv=notrunc status=none && echo junk > junk.txt`,
    files,
  );
  expect(siteState()).not.toEqual(before);

  const restoreWorkflowId = uid('restore');
  const restored = await bed.env.client.workflow.execute(restoreSite, {
    taskQueue,
    workflowId: restoreWorkflowId,
    args: [{ siteId, backupId: backup.backupId, triggeredBy: 'test' }],
  });
  expect(restored.restored).toBe(backup.backupId);
  await recordHistory(backupWorkflowId, 'backupSite');
  await recordHistory(restoreWorkflowId, 'restoreSite');
  expect(siteState()).toEqual(before);

  // the safety backup holds the damaged state, verified, and the site is out of maintenance
  const safety = manifestOf(restored.safetyBackup.backupId);
  expect(safety.kind).toBe('safety');
  expect(safety.verified).toBe(true);
  expect(safety.database.rowCounts).toEqual({ junk: 0, node: 1500 });
  const page = await fetchSite(bed.fleet, site.domains![0]!);
  expect(page.status).toBe(200);
  expect(page.siteState).toBeUndefined();
}, 240_000);

test('a tampered artifact is caught by its checksum: verification fails, restore refuses and touches nothing', async () => {
  const backup = await bed.env.client.workflow.execute(backupSite, {
    taskQueue,
    workflowId: uid('backup'),
    args: [{ siteId, prune: false }],
  });
  const dir = `/srv/qm/backups/${siteId}/${backup.backupId}`;
  // one byte changed in the middle of the files archive (same size, still a file)
  onStorage(
    `printf 'Z' | dd of="$1/files.tar.gz" bs=1 seek=$(( $(stat -c %s "$1/files.tar.gz") / 2 )) conv=notrunc status=none`,
    dir,
  );
  const before = siteState();

  const refused = await failureOf(
    bed.env.client.workflow.execute(restoreSite, {
      taskQueue,
      workflowId: uid('restore'),
      args: [{ siteId, backupId: backup.backupId }],
    }),
  );
  expect(refused).toContain('files.tar.gz does not match its checksum: refusing to restore it');
  expect(siteState()).toEqual(before);
  expect((await fetchSite(bed.fleet, site.domains![0]!)).status).toBe(200);
  // refused before the safety backup: the only backups are the earlier ones
  expect(onStorage('ls "$1"', `/srv/qm/backups/${siteId}`).split('\n').filter(Boolean)).toHaveLength(3);

  // verifying it again finds the damage and marks it bad
  const verified = (await bed.env.client.workflow.execute(runActivity, {
    taskQueue,
    workflowId: uid('verify'),
    args: [
      {
        activity: 'verifyBackup',
        args: [
          {
            siteId,
            backupId: backup.backupId,
            storageHost: placement.storageHost,
            dbHost: placement.dbHost,
            at: new Date().toISOString(),
          },
        ],
      },
    ],
  })) as { verified: boolean; problems: string[] };
  expect(verified).toEqual({
    verified: false,
    problems: ['files.tar.gz: checksum does not match the manifest'],
    manifest: expect.objectContaining({ verified: false }),
  });
  expect(manifestOf(backup.backupId).verified).toBe(false);

  // and the dump likewise (the earlier good backup)
  onStorage(
    `printf 'Z' | dd of="$1/db.sql.gz" bs=1 seek=100 conv=notrunc status=none`,
    `/srv/qm/backups/${siteId}/${goodBackup}`,
  );
  const refusedDb = await failureOf(
    bed.env.client.workflow.execute(restoreSite, {
      taskQueue,
      workflowId: uid('restore'),
      args: [{ siteId, backupId: goodBackup }],
    }),
  );
  expect(refusedDb).toContain('db.sql.gz does not match its checksum');
  expect(siteState()).toEqual(before);
}, 180_000);

test('a restore that fails half-way puts the safety backup back, leaves maintenance, and fails with the cause', async () => {
  const target = await bed.env.client.workflow.execute(backupSite, {
    taskQueue,
    workflowId: uid('backup'),
    args: [{ siteId, prune: false }],
  });
  // the site moves on after the backup: this is what must be there again after the failed restore
  sql(`INSERT INTO \`${db}\`.node VALUES (99999, 'written after the backup', '')`);
  onStorage('echo after > "$1/after.txt"', files);
  const before = siteState();

  failCheckOf = target.backupId;
  const rollbackWorkflowId = uid('restore');
  const err = await bed.env.client.workflow
    .execute(restoreSite, {
      taskQueue,
      workflowId: rollbackWorkflowId,
      args: [{ siteId, backupId: target.backupId }],
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    )
    .finally(() => (failCheckOf = undefined));
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('RestoreFailed');
  await recordHistory(rollbackWorkflowId, 'restoreSite.rollback');
  // the step that failed, the cause, and that the site was put back
  expect(cause.message).toContain(`failed at "${target.backupId}: check row counts and files"`);
  expect(cause.message).toContain('injected: the check failed');
  expect(cause.message).toContain('was put back as it was before, from the safety backup');
  expect(siteState()).toEqual(before);
  const page = await fetchSite(bed.fleet, site.domains![0]!);
  expect([page.status, page.siteState]).toEqual([200, undefined]);
}, 180_000);
