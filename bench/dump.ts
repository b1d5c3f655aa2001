import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mysqldumpArgv } from '../activities/db/commands';
import { dumpDatabase } from '../activities/db/dump';
import { quoteArgv } from '../activities/ssh/quote';
import { CLIENT_KEY, TESTBED_DIR } from '../dev/fleet';
import { benchFleet, ensureRevisionsDatabase, median, peakRss, report, round, shell } from './lib';

/**
 * Streamed dump throughput: dumpDatabase (mysqldump | gzip on the host, streamed over the pooled
 * ssh2 connection into a local file) against OpenSSH doing the same, with gzip locally and with
 * gzip on the host; and the peak RSS of this process while it streams.
 *
 *   npm run bench -- dump [RUNS=2] [TARGET_MB=1024]
 *
 * At 1 GB a dump takes about 50 s on the bed (gzip -6 is the bottleneck), so two runs of the three
 * methods take about 5 minutes.
 *
 * The database (qm_bench on host1, about TARGET_MB of InnoDB data) is generated once with SQL and
 * reused by later runs. Runs are interleaved, in an order that rotates each run, so that noise from
 * other work on the machine (2 shared cores) spreads over all three.
 */
const HOST = 'host1';
const DB = 'qm_bench';
const RUNS = Number(process.argv[2] ?? 2);
const TARGET_MB = Number(process.argv[3] ?? 1024);

const MB = 2 ** 20;

async function main() {
  const fleet = benchFleet();
  const pool = fleet.pool;
  const host = pool.host(HOST);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-dump-'));
  try {
    const dbBytes = await ensureRevisionsDatabase(pool, HOST, DB, TARGET_MB);
    console.log(`${DB} on ${HOST}: ${round(dbBytes / MB, 0)} MB of data and indexes`);

    // OpenSSH with the bed's key, pinned host keys, and the same mysqldump options we use
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
    const remoteDump = quoteArgv(mysqldumpArgv(DB));
    const opensshLocalGzip = (file: string) =>
      shell('"$@" "$DUMP" | gzip -c > "$OUT"', ssh, { DUMP: remoteDump, OUT: file });
    const opensshRemoteGzip = (file: string) =>
      shell('"$@" "$DUMP | gzip -c" > "$OUT"', ssh, { DUMP: remoteDump, OUT: file });

    const file = path.join(dir, 'dump.sql.gz');
    const times = { ours: [] as number[], localGzip: [] as number[], remoteGzip: [] as number[] };
    let peakMb = 0;
    let rssBeforeMb = 0;
    let gzBytes = 0;
    const methods: { label: string; run: () => Promise<number> }[] = [
      {
        label: 'dumpDatabase (ssh2 pool, gzip on host)',
        run: async () => {
          global.gc?.();
          rssBeforeMb = process.memoryUsage().rss / MB;
          const t = Date.now();
          const { result, peakMb: peak } = await peakRss(() =>
            dumpDatabase(pool, HOST, DB, fs.createWriteStream(file)),
          );
          const ms = Date.now() - t;
          times.ours.push(ms);
          peakMb = Math.max(peakMb, peak);
          gzBytes = result.bytes;
          if (fs.statSync(file).size !== result.bytes)
            throw new Error('the dump file is not the size reported');
          return ms;
        },
      },
      {
        label: 'ssh mysqldump | gzip (local)',
        run: async () => {
          const t = Date.now();
          await opensshLocalGzip(file);
          times.localGzip.push(Date.now() - t);
          return Date.now() - t;
        },
      },
      {
        label: "ssh 'mysqldump | gzip'",
        run: async () => {
          const t = Date.now();
          await opensshRemoteGzip(file);
          times.remoteGzip.push(Date.now() - t);
          return Date.now() - t;
        },
      },
    ];
    for (let i = 0; i < RUNS; i++) {
      // rotate the order each run, so that no method always goes first (or after the same one)
      for (let j = 0; j < methods.length; j++) {
        const m = methods[(i + j) % methods.length]!;
        const ms = await m.run();
        console.log(`run ${i + 1}: ${m.label}: ${ms} ms, ${round(fs.statSync(file).size / MB, 1)} MB gz`);
        fs.rmSync(file);
      }
    }

    const ours = median(times.ours);
    const localGzip = median(times.localGzip);
    const remoteGzip = median(times.remoteGzip);
    const mbps = (ms: number) => round(dbBytes / MB / (ms / 1000), 1);
    console.log(
      `\nmedians over ${RUNS} runs: dumpDatabase ${ours} ms (${mbps(ours)} MB/s of data), ` +
        `OpenSSH + local gzip ${localGzip} ms (${mbps(localGzip)} MB/s), ` +
        `OpenSSH + gzip on host ${remoteGzip} ms (${mbps(remoteGzip)} MB/s)`,
    );
    console.log(
      `throughput ratio (target >= 0.9): vs local gzip ${round(localGzip / ours)}x, vs gzip on host ${round(remoteGzip / ours)}x; ` +
        `peak RSS ${round(peakMb, 0)} MB (before ${round(rssBeforeMb, 0)} MB; target < 200 MB)`,
    );
    report('dump', {
      host: HOST,
      runs: RUNS,
      dbMb: round(dbBytes / MB, 0),
      gzMb: round(gzBytes / MB, 1),
      oursMs: ours,
      opensshLocalGzipMs: localGzip,
      opensshRemoteGzipMs: remoteGzip,
      oursMBps: mbps(ours),
      ratioVsLocalGzip: round(localGzip / ours),
      ratioVsRemoteGzip: round(remoteGzip / ours),
      peakRssMb: round(peakMb, 0),
      rssBeforeMb: round(rssBeforeMb, 0),
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await fleet.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
