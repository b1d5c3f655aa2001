import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { dumpSiteDatabase } from '../activities/backup/database';
import { SshHostStore } from '../activities/backup/store';
import { runSqlScript } from '../activities/db/client';
import { mysqldumpArgv } from '../activities/db/commands';
import { quoteArgv } from '../activities/ssh/quote';
import type { Fleet } from '../activities/fleet';
import { createSmallSite, type SmallSite } from '../test/backup/smallSites';
import { CLIENT_KEY, TESTBED_DIR } from '../dev/fleet';
import { startDevServer } from '../dev/temporal';
import type { nightlyBackups } from '../workflows';
import { backupIdFor } from '../protocol/ids';
import { benchFleet, ensureRevisionsDatabase, median, peakRss, report, round, shell } from './lib';

/**
 * Backups on the bed, two parts:
 *
 * 1. Throughput of one large database: dumpSiteDatabase (row counts before and after, mysqldump
 *    --single-transaction | gzip on the DB host, streamed through this process into the storage
 *    host's backup area with sha256, checked and committed there) against `ssh db 'mysqldump
 *    --single-transaction | gzip' > file` with OpenSSH; and the peak RSS of this process.
 * 2. The nightly fan-out over N small real sites (a database with one table and a files directory
 *    each, site workflows holding their records) on the 3 DB hosts: total time, the most backups
 *    at once per DB host as the workflow counted them, and as sampled on the DB hosts themselves
 *    (distinct site and scratch databases with a connection in the process list).
 *
 *   npm run bench -- backup [TARGET_MB=1024] [SITES=200] [RUNS=2]
 *
 * The big database (site_bench on host2, about TARGET_MB of InnoDB data) is generated once and
 * reused by later runs; the small sites and every backup are removed at the end.
 */
const DB_HOST = 'host2';
const STORAGE_HOST = 'host1';
const TARGET_MB = Number(process.argv[2] ?? 1024);
const SITES = Number(process.argv[3] ?? 200);
const RUNS = Number(process.argv[4] ?? 2);
const PER_DB_HOST = 2;
const BENCH_SITE = 'bench';
const BENCH_DB = 'site_bench';
const MB = 2 ** 20;

async function main() {
  const fleet = benchFleet();
  try {
    const big = RUNS > 0 ? await throughput(fleet) : undefined;
    const fanOut = SITES > 0 ? await nightly(fleet) : undefined;
    report('backup', { ...big, ...fanOut });
  } finally {
    await fleet.close();
  }
}

async function throughput(fleet: Fleet) {
  const pool = fleet.pool;
  const dbBytes = await ensureRevisionsDatabase(fleet.pool, DB_HOST, BENCH_DB, TARGET_MB);
  console.log(`${BENCH_DB} on ${DB_HOST}: ${round(dbBytes / MB, 0)} MB of data and indexes`);
  const store = new SshHostStore(pool, STORAGE_HOST);
  const host = pool.host(DB_HOST);
  const ssh = [
    'ssh',
    '-i',
    CLIENT_KEY,
    '-o',
    `UserKnownHostsFile=${path.join(TESTBED_DIR, 'keys', 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    `${host.user}@${host.address}`,
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-backup-'));
  const file = path.join(dir, 'dump.sql.gz');
  const ours: number[] = [];
  const oursStream: number[] = [];
  const baseline: number[] = [];
  let peakMb = 0;
  let gzBytes = 0;
  try {
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 ? ['baseline', 'ours'] : ['ours', 'baseline'];
      for (const which of order) {
        if (which === 'ours') {
          global.gc?.();
          const backupId = backupIdFor(new Date(), `bench-${i}`);
          const t = Date.now();
          const { result, peakMb: peak } = await peakRss(() =>
            dumpSiteDatabase(pool, store, { siteId: BENCH_SITE, dbHost: DB_HOST, backupId }),
          );
          ours.push(Date.now() - t);
          oursStream.push(result.ms - result.countMs);
          peakMb = Math.max(peakMb, peak);
          gzBytes = result.bytes;
          console.log(
            `run ${i + 1}: backupDatabase ${ours.at(-1)} ms (the stream ${result.ms - result.countMs} ms, row counts before and after ${result.countMs} ms), ` +
              `${round(result.bytes / MB, 1)} MB gz, peak RSS ${round(peak, 0)} MB`,
          );
          await store.remove(BENCH_SITE, backupId);
        } else {
          const t = Date.now();
          await shell('"$@" "$DUMP | gzip -c" > "$OUT"', ssh, {
            DUMP: quoteArgv(mysqldumpArgv(BENCH_DB)),
            OUT: file,
          });
          baseline.push(Date.now() - t);
          console.log(`run ${i + 1}: ssh 'mysqldump | gzip' > file ${baseline.at(-1)} ms`);
          fs.rmSync(file);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const o = median(ours);
  const os_ = median(oursStream);
  const b = median(baseline);
  console.log(
    `\nmedians over ${RUNS} runs: backupDatabase ${o} ms (its stream ${os_} ms), OpenSSH baseline ${b} ms: ` +
      `ratio ${round(b / o)} whole, ${round(b / os_)} stream alone (target >= 0.9); ` +
      `peak RSS ${round(peakMb, 0)} MB (target < 200 MB)`,
  );
  return {
    dbMb: round(dbBytes / MB, 0),
    gzMb: round(gzBytes / MB, 1),
    backupDatabaseMs: o,
    backupStreamMs: os_,
    opensshBaselineMs: b,
    throughputRatio: round(b / o),
    streamThroughputRatio: round(b / os_),
    backupMBps: round(dbBytes / MB / (o / 1000), 1),
    peakRssMb: round(peakMb, 0),
  };
}

async function nightly(fleet: Fleet) {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed already
  }
  const server = await startDevServer({
    headless: true,
    logFile: path.join(TESTBED_DIR, 'logs', 'bench-temporal.log'),
  });
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  const client = new Client({ connection: clientConnection });
  const taskQueue = 'bench-backup';
  const dbHosts = fleet.hosts.filter((h) => h.roles.includes('db')).map((h) => h.name);
  const sites: SmallSite[] = [];
  const run = Date.now().toString(36);
  try {
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../workflows'),
      logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
    });
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: { code },
      activities: createActivities(fleet, { temporal: client, taskQueue }),
    });
    return await worker.runUntil(async () => {
      const t0 = Date.now();
      for (let i = 0; i < SITES; i += 10)
        sites.push(
          ...(await Promise.all(
            Array.from({ length: Math.min(10, SITES - i) }, (_, j) =>
              createSmallSite(client, fleet, taskQueue, {
                siteId: `b${run}-${i + j}`,
                dbHost: dbHosts[(i + j) % dbHosts.length]!,
                storageHost: STORAGE_HOST,
                rows: 200,
              }),
            ),
          )),
        );
      console.log(`${SITES} small sites on ${dbHosts.join(', ')} in ${Date.now() - t0} ms`);
      // the fan-out finds sites through visibility: wait until every site workflow has published itself
      for (;;) {
        const { count } = await client.workflow.count(
          `WorkflowType = 'site' AND State = 'active' AND ExecutionStatus = 'Running'`,
        );
        if (count >= SITES) break;
        await new Promise((r) => setTimeout(r, 500));
      }

      // independent of the workflow's own count: who is working in which database, sampled on each DB host
      const seen: Record<string, number> = {};
      let sampling = true;
      const samplers = dbHosts.map(async (host) => {
        while (sampling) {
          const rows = await runSqlScript(
            fleet.pool,
            host,
            "SELECT COUNT(DISTINCT DB) FROM information_schema.PROCESSLIST WHERE DB LIKE 'site\\_b%' OR DB LIKE 'qm\\_verify\\_%'",
          );
          seen[host] = Math.max(seen[host] ?? 0, Number(rows[0]?.[0] ?? 0));
          await new Promise((r) => setTimeout(r, 100));
        }
      });
      const t1 = Date.now();
      const result = await client.workflow.execute<typeof nightlyBackups>('nightlyBackups', {
        taskQueue,
        workflowId: `bench-nightly-${run}`,
        args: [{ windowMinutes: 0, perDbHost: PER_DB_HOST, sites: sites.map((s) => s.siteId) }],
      });
      const totalMs = Date.now() - t1;
      sampling = false;
      await Promise.all(samplers);
      console.log(
        `nightly fan-out: ${result.succeeded.length}/${result.sites} backed up and verified in ${totalMs} ms ` +
          `(${round(totalMs / result.sites, 0)} ms a site), ${result.failed.length} failed; ` +
          `most at once per DB host: workflow ${JSON.stringify(result.maxConcurrentPerDbHost)}, sampled ${JSON.stringify(seen)}`,
      );
      if (result.failed.length) console.log(result.failed.slice(0, 5));
      return {
        sites: result.sites,
        notActive: result.notActive.length,
        succeeded: result.succeeded.length,
        failed: result.failed.length,
        fanOutMs: totalMs,
        perDbHostLimit: PER_DB_HOST,
        maxConcurrentPerDbHost: result.maxConcurrentPerDbHost,
        sampledMaxPerDbHost: seen,
      };
    });
  } finally {
    for (let i = 0; i < sites.length; i += 20)
      await Promise.all(sites.slice(i, i + 20).map((s) => removeSmall(fleet, s)));
    await connection.close();
    await clientConnection.close();
    await server.stop();
  }
}

/** The site's database, files and backups (the site workflows go with the dev server). */
async function removeSmall(fleet: Fleet, s: SmallSite) {
  await runSqlScript(
    fleet.pool,
    s.placement.dbHost,
    `DROP DATABASE IF EXISTS \`site_${s.siteId.replace(/-/g, '_')}\``,
  );
  await fleet.pool.exec(STORAGE_HOST, [
    'sh',
    '-c',
    'rm -rf -- "$1" "$2"',
    'qm',
    `/srv/qm/files/${s.siteId}`,
    `/srv/qm/backups/${s.siteId}`,
  ]);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
