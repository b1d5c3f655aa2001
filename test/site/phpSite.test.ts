import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import http from 'node:http';
import { snapshotPaths } from '../../activities/db/commands';
import { PROXY_PORT } from '../../activities/proxy/layout';
import { probeThroughProxy } from '../../activities/proxy/probe';
import { siteNames } from '../../schema/site';
import { testbed } from '../../dev/fleet';
import type { Placement } from '../../schema/site';
import type { Manifest } from '../../activities/backup/manifest';
import {
  backupSite,
  deployRelease,
  deprovisionSite,
  patchRoll,
  provisionSite,
  restoreSite,
  resumeSite,
  rollbackSite,
  suspendSite,
} from '../../workflows';
import { Clone } from '../deploy/gitBed';
import type { Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import {
  acknowledgedWrites,
  startLoad,
  summarize,
  type LoadOptions,
  type RequestResult,
} from '../support/load';
import { APP_HOSTS, openSiteBed, phpSite, proxyAddresses, siteSql, visitsOf } from '../support/phpSite';
import { removeGitRepoOnHost, siteLeftovers } from '../support/site';
import { startWorker, uniqueTaskQueue, type FileWorker } from '../support/temporal';

/**
 * What a customer of a real PHP + MariaDB site feels while ops operate it: the test-php profile
 * (Apache, mod_php, MariaDB: every page records a visit in the site's database), on two app
 * servers behind two proxy hosts, driven by a bounded load of visitors (test/support/load.ts,
 * 10% of them on a page that takes 2 s) while a deploy with a schema migration, a rollback, a
 * deploy whose migration fails, a backup and its restore, a suspension and a patch roll with
 * reboots run. Outcomes are read from the site's database on its host and from the visitors' side.
 */

jest.setTimeout(300_000);

let bed: Bed;
let worker: FileWorker;
let clone: Clone;
const tag = Math.random().toString(36).slice(2, 7);
const repo = `customers/php-${tag}.git`;
const site = phpSite({ siteId: `php-${tag}`, git: { repo, branch: 'main' } });
const { siteId } = site;
const domain = site.domains[0]!;
let placement: Placement;
/** Every request the loads of this file sent, and what the site said it wrote. */
const allResults: RequestResult[] = [];

beforeAll(async () => {
  bed = await openSiteBed();
  worker = await startWorker(bed, { taskQueue: uniqueTaskQueue('php') });
  const r = await bed.env.client.workflow.execute(provisionSite, {
    taskQueue: worker.taskQueue,
    workflowId: `provision-${siteId}`,
    args: [{ site, triggeredBy: 'test' }],
  });
  placement = r.placement;
  clone = await Clone.create(bed.fleet, repo);
}, 20 * 60_000);

afterAll(async () => {
  try {
    if (placement) {
      await bed.env.client.workflow.execute(deprovisionSite, {
        taskQueue: worker.taskQueue,
        workflowId: `deprovision-${siteId}`,
        args: [{ siteId, skipFinalBackup: true }],
      });
      expect(await siteLeftovers(bed.fleet, siteId)).toEqual([]);
      await removeGitRepoOnHost(bed.fleet, repo);
    }
  } finally {
    clone?.remove();
    await worker?.stop();
    await bed?.close();
  }
});

/** One GET through each proxy host. */
async function throughEachProxy(path: string) {
  return Promise.all(
    proxyAddresses(bed.fleet).map((address) =>
      probeThroughProxy({ address, domain, path, timeoutMs: 10_000 }),
    ),
  );
}

/** Run `op` while visitors load the site; stop them a second after it ends. */
async function underLoad<T>(
  name: string,
  op: () => Promise<T>,
  opts: Partial<LoadOptions> = {},
): Promise<{ result?: T; error?: unknown; results: RequestResult[] }> {
  const load = startLoad(bed.fleet, {
    domain,
    rate: 40,
    total: 4000,
    slowShare: 0.1,
    tag: `${tag}-${name}`,
    ...opts,
  });
  // visitors first, then the operation
  await new Promise((r) => setTimeout(r, 1000));
  let result: T | undefined;
  let error: unknown;
  try {
    result = await op();
  } catch (err) {
    error = err;
  }
  await new Promise((r) => setTimeout(r, 1000));
  const results = await load.stop();
  allResults.push(...results);
  const s = summarize(results);
  console.log(
    `${name}: ${s.sent} requests, ${s.served} served, ${s.failed} failed, p50 ${s.p50} ms, p99 ${s.p99} ms`,
    s.outcomes,
  );
  return { result, error, results };
}

/** Every acknowledged write of `results` is in the database with the request's id. */
function expectWritesKept(results: RequestResult[]) {
  const rows = new Map(visitsOf(placement.dbHost, siteId).map((v) => [v.id, v.rid]));
  const missing = [...acknowledgedWrites(results)].filter(([rid, visit]) => rows.get(visit) !== rid);
  expect(missing).toEqual([]);
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause as ApplicationFailure;
}

/** POST a body through a proxy host: status and body. */
function post(address: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: address, port: PROXY_PORT, method: 'POST', path, agent: false, headers: { Host: domain } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const MIGRATION_1 =
  '-- the content gets a summary\n' +
  "ALTER TABLE content ADD COLUMN summary VARCHAR(255) NOT NULL DEFAULT '';\n" +
  "UPDATE content SET summary = CONCAT('About ', title);\n";

test('the site on two app servers behind two proxies: every page records a visit, uploads reach the shared files, cron writes', async () => {
  expect(placement.appHosts.sort()).toEqual(APP_HOSTS);
  expect(placement.proxyHosts.sort()).toEqual(['host1', 'host4']);
  const pages = await throughEachProxy(`/?rid=${tag}-hello`);
  for (const p of pages) {
    expect(p.status).toBe(200);
    expect(JSON.parse(p.bodyExcerpt)).toMatchObject({
      site: siteId,
      release: 'initial',
      rid: `${tag}-hello`,
    });
  }
  const ids = pages.map((p) => (JSON.parse(p.bodyExcerpt) as { visit: number }).visit);
  expect(visitsOf(placement.dbHost, siteId).filter((v) => ids.includes(v.id))).toHaveLength(2);
  // an upload through one proxy (one app server) is served through the other, from the shared files
  const [first, second] = proxyAddresses(bed.fleet);
  const upload = await post(first!, '/upload?name=hello.txt', `hello from ${tag}\n`);
  expect(upload.status).toBe(200);
  expect(siteSql(placement.dbHost, siteId, "SELECT bytes FROM uploads WHERE name = 'hello.txt'")).toEqual([
    [String(`hello from ${tag}\n`.length)],
  ]);
  for (let i = 0; i < 2; i++) {
    const file = await probeThroughProxy({
      address: second!,
      domain,
      path: '/files/uploads/hello.txt',
      timeoutMs: 5000,
    });
    expect(file).toMatchObject({ status: 200, bodyExcerpt: `hello from ${tag}\n` });
  }
  // the cron container writes through the same code
  await eventually(() => visitsOf(placement.dbHost, siteId).some((v) => v.rid.startsWith('cron-')), {
    what: 'a cron visit',
    timeoutMs: 20_000,
  });
});

test('a deploy with a schema migration under load: no request fails, every acknowledged write is kept', async () => {
  const { commit } = await clone.push('main', { 'migrations/0001_summary.sql': MIGRATION_1, VERSION: '1\n' });
  const { result, error, results } = await underLoad('deploy', () =>
    bed.env.client.workflow.execute(deployRelease, {
      taskQueue: worker.taskQueue,
      workflowId: `deploy-${siteId}-${commit.slice(0, 8)}`,
      args: [{ siteId, commit, triggeredBy: 'test', drainSeconds: 5 }],
    }),
  );
  expect(error).toBeUndefined();
  expect(result).toMatchObject({ status: 'deployed', release: commit });
  expect(summarize(results).failures).toEqual([]);
  expectWritesKept(results);
  // the migration ran once, and the pages run the new release
  expect(siteSql(placement.dbHost, siteId, 'SELECT version FROM schema_migrations')).toEqual([['0001']]);
  expect(siteSql(placement.dbHost, siteId, 'SELECT summary FROM content WHERE id = 1')).toEqual([
    ['About Welcome'],
  ]);
  for (const p of await throughEachProxy('/'))
    expect(JSON.parse(p.bodyExcerpt)).toMatchObject({ release: commit, schema: '0001' });
});

test('a rollback under load: no request fails, every acknowledged write is kept, the schema stays', async () => {
  const { result, error, results } = await underLoad('rollback', () =>
    bed.env.client.workflow.execute(rollbackSite, {
      taskQueue: worker.taskQueue,
      workflowId: `rollback-${siteId}-${Date.now()}`,
      args: [{ siteId, release: 'initial', triggeredBy: 'test', drainSeconds: 5 }],
    }),
  );
  expect(error).toBeUndefined();
  expect(result).toMatchObject({ status: 'rolled-back', release: 'initial' });
  expect(summarize(results).failures).toEqual([]);
  expectWritesKept(results);
  for (const p of await throughEachProxy('/'))
    expect(JSON.parse(p.bodyExcerpt)).toMatchObject({ release: 'initial', schema: '0001' });
});

test('a deploy whose migration fails, under load: the snapshot is restored, the old release serves, and exactly the writes after the snapshot are lost (docs/deploys.md)', async () => {
  const { commit } = await clone.push('main', {
    'migrations/0002_tags.sql': 'CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL);\n',
    '.fail-migration': '0002\n',
    VERSION: '2\n',
  });
  let deployStart = 0;
  const { error, results } = await underLoad('failed-migration', () => {
    deployStart = Date.now();
    return bed.env.client.workflow.execute(deployRelease, {
      taskQueue: worker.taskQueue,
      workflowId: `deploy-${siteId}-${commit.slice(0, 8)}`,
      args: [{ siteId, commit, triggeredBy: 'test', drainSeconds: 5 }],
    });
  });
  const failure = await failureOf(Promise.reject(error));
  expect(failure.message).toMatch(/failed at "postDeploy hooks".*0002_tags fails on purpose/s);
  const details = failure.details![0] as { databaseRestored: boolean; rolledBack: boolean; snapshot: string };
  expect(details).toMatchObject({ databaseRestored: true, rolledBack: true });

  // the old release serves, on the schema before the migration (its table is gone with the snapshot)
  for (const p of await throughEachProxy('/'))
    expect(JSON.parse(p.bodyExcerpt)).toMatchObject({ release: 'initial', schema: '0001' });
  expect(siteSql(placement.dbHost, siteId, "SHOW TABLES LIKE 'tags'")).toEqual([]);

  // The claim of docs/deploys.md ("Failure: back to the release before"): the database is the
  // snapshot, taken as the deploy began; every write committed after it is lost, none before.
  const snapshotFile = snapshotPaths(siteNames(siteId).database, details.snapshot).file;
  const m = /'visits',(\d+)\)/.exec(
    testbed.exec(placement.dbHost, [
      'sh',
      '-c',
      'zcat "$1" | grep -F -A1 "$2"',
      'qm-test',
      snapshotFile,
      'INSERT INTO `sequences`',
    ]),
  );
  const n = Number(m![1]);
  const rows = visitsOf(placement.dbHost, siteId);
  // up to the snapshot: every visit, 1..N
  expect(rows.filter((r) => r.id <= n).map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  const byRid = new Map(rows.map((r) => [r.rid, r.id]));
  const acked = [...acknowledgedWrites(results)].map(([rid, visit]) => ({
    rid,
    visit,
    req: results.find((r) => r.rid === rid)!,
  }));
  // every write answered before the deploy began is kept; those after the snapshot are lost unless
  // made after the restore (then with a new id above N)
  const before = acked.filter((w) => w.req.sentAt + w.req.ms < deployStart);
  expect(before.length).toBeGreaterThan(0);
  expect(before.filter((w) => byRid.get(w.rid) !== w.visit)).toEqual([]);
  const afterSnapshot = acked.filter((w) => w.visit > n);
  const lost = afterSnapshot.filter((w) => byRid.get(w.rid) !== w.visit);
  const keptAfter = afterSnapshot.filter((w) => byRid.get(w.rid) === w.visit);
  expect(lost.length).toBeGreaterThan(0);
  expect(acked.filter((w) => w.visit <= n && byRid.get(w.rid) !== w.visit)).toEqual([]);
  // the writes kept above N were made after the restore: after the maintenance page
  const maintenance = results.filter((r) => r.siteState === 'maintenance');
  expect(maintenance.length).toBeGreaterThan(0);
  const lastLost = Math.max(...lost.map((w) => w.req.sentAt));
  expect(keptAfter.filter((w) => w.req.sentAt < lastLost)).toEqual([]);
  expect(summarize(results).failures).toEqual([]);
  console.log(
    `failed migration: snapshot at visit ${n}; ${lost.length} acknowledged writes lost (sent ${lost.length ? new Date(Math.min(...lost.map((w) => w.req.sentAt))).toISOString() : '-'}..), ${maintenance.length} maintenance pages`,
  );
});

/** The rows of the visits table as it was before `since` (ms since the epoch): the loads' writes but `except`'s, and cron's before it. */
function writtenBefore(since: number, except: string) {
  const cutoff = new Date(Math.floor(since / 1000) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  return (rid: string) =>
    rid.startsWith('cron-') ? rid.slice('cron-'.length) < cutoff : !rid.startsWith(`${tag}-${except}-`);
}

test('a backup taken under continuous writes, restored: the database is one consistent moment, as its manifest counts', async () => {
  let backupStart = 0;
  const backup = await underLoad(
    'backup',
    () => {
      backupStart = Date.now();
      return bed.env.client.workflow.execute(backupSite, {
        taskQueue: worker.taskQueue,
        workflowId: `backup-${siteId}-${Date.now()}`,
        args: [{ siteId, triggeredBy: 'test', prune: false }],
      });
    },
    { slowShare: 0 },
  );
  expect(backup.error).toBeUndefined();
  expect(summarize(backup.results).failures).toEqual([]);
  const { backupId } = backup.result!;
  const manifest = JSON.parse(
    testbed.exec(placement.storageHost, ['cat', `/srv/qm/backups/${siteId}/${backupId}/manifest.json`]),
  ) as Manifest;
  expect(manifest.verified).toBe(true);

  const restoreStart = Date.now();
  const restore = await underLoad('restore', () =>
    bed.env.client.workflow.execute(restoreSite, {
      taskQueue: worker.taskQueue,
      workflowId: `restore-${siteId}-${Date.now()}`,
      args: [{ siteId, backupId, triggeredBy: 'test' }],
    }),
  );
  expect(restore.error).toBeUndefined();
  expect(summarize(restore.results).failures).toEqual([]);

  // One moment: the visits written before the restore that the database holds are exactly 1..N
  // (ids commit in order), and every visit above N was written after the restore.
  const rows = visitsOf(placement.dbHost, siteId);
  const before = writtenBefore(restoreStart, 'restore');
  const old = rows.filter((r) => before(r.rid));
  const n = Math.max(...old.map((r) => r.id));
  expect(old.map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  expect(rows.filter((r) => r.id > n && before(r.rid))).toEqual([]);
  // the manifest's counts: visits were written while the dump ran, so N lies between the counts
  // read before and after it, and is what the verification restored; every other table's count is exact
  const changed = manifest.database.changedDuringDump.visits;
  if (changed) {
    expect(n).toBeGreaterThanOrEqual(changed.before!);
    expect(n).toBeLessThanOrEqual(changed.after!);
    expect(manifest.verification!.changedTablesRestored.visits).toBe(n);
  } else expect(manifest.database.rowCounts.visits).toBe(n);
  for (const [table, count] of Object.entries(manifest.database.rowCounts).filter(([t]) => t !== 'visits'))
    expect([
      table,
      Number(siteSql(placement.dbHost, siteId, `SELECT COUNT(*) FROM \`${table}\``)[0]![0]),
    ]).toEqual([table, count]);
  // and the writes acknowledged while the backup ran: those up to N are there, the later ones not
  const byRid = new Map(rows.map((r) => [r.rid, r.id]));
  const acked = [...acknowledgedWrites(backup.results)];
  expect(acked.filter(([rid, visit]) => visit <= n !== (byRid.get(rid) === visit))).toEqual([]);
  const answeredBeforeBackup = backup.results.filter((r) => r.visit && r.sentAt + r.ms < backupStart);
  expect(answeredBeforeBackup.length).toBeGreaterThan(0);
  expect(answeredBeforeBackup.filter((r) => r.visit! > n)).toEqual([]);
  console.log(
    `backup ${backupId}: consistent at visit ${n} (dump saw ${changed ? `${changed.before}..${changed.after}` : 'no change'})`,
  );
});

test('suspend and resume under load: the suspended page while suspended, never an error; served again after', async () => {
  let resumed = 0;
  const { error, results } = await underLoad('suspend', async () => {
    await bed.env.client.workflow.execute(suspendSite, {
      taskQueue: worker.taskQueue,
      workflowId: `suspend-${siteId}-${Date.now()}`,
      args: [{ siteId, reason: 'test', triggeredBy: 'test' }],
    });
    await new Promise((r) => setTimeout(r, 2000));
    await bed.env.client.workflow.execute(resumeSite, {
      taskQueue: worker.taskQueue,
      workflowId: `resume-${siteId}-${Date.now()}`,
      args: [{ siteId, triggeredBy: 'test' }],
    });
    resumed = Date.now();
  });
  expect(error).toBeUndefined();
  expect(summarize(results).failures).toEqual([]);
  expect(results.filter((r) => r.outcome === 'site-page').every((r) => r.siteState === 'suspended')).toBe(
    true,
  );
  expect(results.filter((r) => r.siteState === 'suspended').length).toBeGreaterThan(20);
  // served again: every request sent once the resume had ended was
  const last = results.filter((r) => r.sentAt > resumed);
  expect(last.length).toBeGreaterThan(0);
  expect(last.filter((r) => r.outcome !== 'served')).toEqual([]);
  expectWritesKept(results);
});

test('a patch roll with reboots of both app servers under load: no request fails, every acknowledged write is kept', async () => {
  const { result, error, results } = await underLoad('patch-roll', () =>
    bed.env.client.workflow.execute(patchRoll, {
      taskQueue: worker.taskQueue,
      workflowId: `patch-roll-${siteId}-${Date.now()}`,
      args: [
        {
          hosts: { names: APP_HOSTS },
          canary: false,
          reboot: 'always',
          patchCommand: ['true'],
          drainTimeoutSeconds: 10,
          triggeredBy: 'test',
        },
      ],
    }),
  );
  expect(error).toBeUndefined();
  expect(result).toMatchObject({ status: 'completed', done: APP_HOSTS });
  for (const h of APP_HOSTS) expect(result!.hosts[h]!.rebooted).toBe(true);
  expect(summarize(results).failures).toEqual([]);
  expectWritesKept(results);
  // both servers serve again, and cron writes again
  const since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await eventually(
    () => visitsOf(placement.dbHost, siteId).some((v) => v.rid.startsWith('cron-') && v.rid.slice(5) > since),
    { what: 'cron writing after the reboots', timeoutMs: 20_000 },
  );
});
