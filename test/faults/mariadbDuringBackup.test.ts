import { WorkflowFailedError } from '@temporalio/client';
import type { Manifest } from '../../activities/backup/manifest';
import { verifyDatabaseName } from '../../activities/backup/layout';
import { testbed } from '../../dev/fleet';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { backupSite } from '../../workflows';
import { rootMessage } from '../../workflows/lib/input';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { startWorker, type FileWorker } from '../support/temporal';
import { createSmallSite, removeSmallSite, type SmallSite } from '../backup/smallSites';

/**
 * The DB host's MariaDB stopped in the middle of a backup, on the real bed: once while the dump
 * streams to the storage host, once while verification loads it into the scratch database. Each
 * backup fails naming the host and the cause (after its retries: MariaDB stays down), nothing it
 * left counts as a backup, the site's last good backup stays, and once MariaDB is back the next
 * backup succeeds and leaves no scratch database or partial file behind. One site for the file: a
 * database on host2 big enough that its dump takes seconds, its files and backups on host1.
 */

jest.setTimeout(180_000);

let bed: Bed;
let worker: FileWorker;
let site: SmallSite | undefined;
const run = Date.now().toString(36);
const siteId = `mdb-${run}`;
const db = `site_mdb_${run}`;
const DB_HOST = 'host2';
const STORAGE_HOST = 'host1';
const backups = `/srv/qm/backups/${siteId}`;
/** The site's rows: 50 in node, 600 000 in big (a dump of a few seconds). */
const ROWS = { node: 50, big: 600_000 };
let lastGood: string;

const sql = (query: string): string[][] =>
  testbed
    .exec(DB_HOST, ['mariadb', '--batch', '--skip-column-names', '-e', query])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
const onStorage = (script: string, ...args: string[]): string =>
  testbed.exec(STORAGE_HOST, ['bash', '-c', script, 'qm-test', ...args]);

/** Every file in the site's backup area, hidden ones (partials) too: `backupId/name`. */
const backupFiles = () =>
  onStorage('cd "$1" 2>/dev/null && find . -type f -printf "%P\\n" | LC_ALL=C sort || true', backups)
    .split('\n')
    .filter(Boolean);
/** The site's scratch database, if the DB host has it. */
const scratchDatabases = () =>
  sql(
    `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='${verifyDatabaseName(siteId)}'`,
  ).map((r) => r[0]);
const rows = () => ({
  node: Number(sql(`SELECT COUNT(*) FROM \`${db}\`.node`)[0]![0]),
  big: Number(sql(`SELECT COUNT(*) FROM \`${db}\`.big`)[0]![0]),
});
const recordOf = async () =>
  (await bed.env.client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery)).record;
const manifestOf = (backupId: string) =>
  JSON.parse(onStorage('cat "$1"', `${backups}/${backupId}/manifest.json`)) as Manifest;

function backup(name: string) {
  return bed.env.client.workflow.start(backupSite, {
    taskQueue: worker.taskQueue,
    workflowId: `backup-${name}-${siteId}`,
    args: [{ siteId, triggeredBy: 'test' }],
  });
}

/**
 * Stop the DB host's MariaDB once `ready` says the backup is where the fault belongs, and keep it
 * stopped until the backup has failed (all its retries); start it again whatever happens. The
 * failure's root message, and how long the backup took to fail once MariaDB was gone.
 */
async function failWithMariadbStopped(
  handle: Awaited<ReturnType<typeof backup>>,
  ready: () => boolean,
  what: string,
): Promise<{ cause: string; ms: number }> {
  try {
    await eventually(ready, { what, timeoutMs: 90_000, intervalMs: 50 });
    testbed.stop(DB_HOST, 'mariadb');
    const t0 = Date.now();
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return { cause: rootMessage(err), ms: Date.now() - t0 };
  } finally {
    testbed.start(DB_HOST, 'mariadb');
  }
}

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed);
  site = await createSmallSite(bed.env.client, bed.fleet, worker.taskQueue, {
    siteId,
    dbHost: DB_HOST,
    storageHost: STORAGE_HOST,
    rows: ROWS.node,
  });
  // the site's last good backup, taken while the site is small
  lastGood = (
    await bed.env.client.workflow.execute(backupSite, {
      taskQueue: worker.taskQueue,
      workflowId: `backup-first-${siteId}`,
      args: [{ siteId, triggeredBy: 'test' }],
    })
  ).backupId;
  // then big: 3 inserts of 200 000 rows (from the sequence engine: no temporary table on the host)
  sql(`CREATE TABLE \`${db}\`.big (id INT PRIMARY KEY AUTO_INCREMENT, body VARCHAR(255)) ENGINE=InnoDB`);
  for (let n = 0; n < 3; n++)
    sql(`USE \`${db}\`; INSERT INTO big (body) SELECT CONCAT(MD5(seq), RAND()) FROM seq_1_to_200000`);
  expect(rows()).toEqual(ROWS);
}, 180_000);

afterAll(async () => {
  testbed.start(DB_HOST, 'mariadb'); // a no-op when it runs
  if (site) await removeSmallSite(bed.env.client, bed.fleet, site);
  await worker?.stop();
  await bed?.close();
});

test('MariaDB stopped mid-dump: the backup fails naming host and cause, leaves no artifact, the last good backup stays', async () => {
  const before = backupFiles();
  expect(before).toEqual([`${lastGood}/db.sql.gz`, `${lastGood}/files.tar.gz`, `${lastGood}/manifest.json`]);
  const handle = await backup('mid-dump');
  const { cause } = await failWithMariadbStopped(
    handle,
    // the dump is streaming: its partial on the storage host has bytes
    () => backupFiles().some((f) => /\/\.db\.sql\.gz\.partial\./.test(f)),
    'the dump to stream into the storage host',
  );
  expect(cause).toMatch(/^host2: .*Can't connect to local server through socket/);

  // the partial is gone, nothing was committed, nothing new counts as a backup
  expect(backupFiles()).toEqual(before);
  expect((await recordOf()).lastGoodBackup?.backupId).toBe(lastGood);
  // the site's data is untouched, no scratch database was made
  expect(rows()).toEqual(ROWS);
  expect(scratchDatabases()).toEqual([]);
});

let failedVerification: string;

test('MariaDB stopped while verification loads the dump into scratch: the backup fails naming host and cause, is never counted good', async () => {
  const handle = await backup('mid-verify');
  const { cause } = await failWithMariadbStopped(
    handle,
    () =>
      sql(
        `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA='${verifyDatabaseName(siteId)}' AND TABLE_NAME='big'`,
      ).length > 0,
    'verification to load the dump into the scratch database',
  );
  expect(cause).toMatch(/^host2: .*Can't connect to local server through socket/);

  // its artifacts are whole, but its manifest never says verified, and the record keeps the last good one
  const stored = backupFiles().filter((f) => !f.startsWith(`${lastGood}/`));
  failedVerification = stored[0]!.split('/')[0]!;
  expect(stored).toEqual(
    ['db.sql.gz', 'files.tar.gz', 'manifest.json'].map((n) => `${failedVerification}/${n}`),
  );
  expect(manifestOf(failedVerification)).toMatchObject({ verified: false, database: { rowCounts: ROWS } });
  expect((await recordOf()).lastGoodBackup?.backupId).toBe(lastGood);
  expect(rows()).toEqual(ROWS);
});

test('MariaDB back: a new backup succeeds, is the last good one, and no scratch database or partial is left', async () => {
  // the cut-short verification's scratch is still there: the drop could not follow the load
  expect(scratchDatabases()).toEqual([verifyDatabaseName(siteId)]);
  // (not pruned: the check below is about what the failures left, not about retention)
  const result = await bed.env.client.workflow.execute(backupSite, {
    taskQueue: worker.taskQueue,
    workflowId: `backup-after-${siteId}`,
    args: [{ siteId, triggeredBy: 'test', prune: false }],
  });
  expect(manifestOf(result.backupId)).toMatchObject({
    verified: true,
    database: { rowCounts: ROWS },
    verification: { ok: true, problems: [] },
  });
  expect((await recordOf()).lastGoodBackup).toEqual({ backupId: result.backupId, at: result.createdAt });
  expect(scratchDatabases()).toEqual([]);
  expect(backupFiles()).toEqual(
    [lastGood, failedVerification, result.backupId]
      .sort()
      .flatMap((id) => ['db.sql.gz', 'files.tar.gz', 'manifest.json'].map((n) => `${id}/${n}`)),
  );
  expect(rows()).toEqual(ROWS);
});
