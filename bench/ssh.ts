import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLIENT_KEY, TESTBED_DIR } from '../dev/fleet';
import { benchFleet, median, peakRss, percentile, report, round, sample, timeIt } from './lib';

/**
 * The round trip of one remote command (`true`) three ways, on the same host in the same run:
 * through the SSH pool (one held ssh2 connection, TCP_NODELAY, a channel per command), a fresh
 * OpenSSH `ssh host true` (a handshake each time), and OpenSSH multiplexed over a ControlMaster
 * (ControlPersist). Then 20 commands at once, through the pool and through the ControlMaster.
 *
 *   npm run bench -- ssh [host] [--n N]
 */
const args = process.argv.slice(2);
const host = args.find((a) => /^host\d+$/.test(a)) ?? 'host2';
const n = Number(args[args.indexOf('--n') + 1] ?? 0) || 200;
const run = promisify(execFile);

const stats = (xs: number[]) => ({ median: round(median(xs)), p90: round(percentile(xs, 90)) });

async function main() {
  const fleet = benchFleet();
  const inv = fleet.pool.host(host);
  const ctlDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-ssh-'));
  const ctl = path.join(ctlDir, 'ctl');
  // the same key, the same pinned host key (the bed's known_hosts), no user config
  const base = [
    '-F',
    '/dev/null',
    '-i',
    CLIENT_KEY,
    '-o',
    `UserKnownHostsFile=${path.join(TESTBED_DIR, 'keys', 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
    '-p',
    String(inv.port),
    `${inv.user}@${inv.address}`,
  ];
  const ssh = (...extra: string[]) => run('ssh', [...extra, ...base, 'true']);
  try {
    const { result, peakMb } = await peakRss(async () => {
      console.log(`exec round trip of \`true\` on ${host} (${inv.address}), ${n} samples each`);
      const pool = await sample(n, () => fleet.pool.exec(host, ['true']), 10);
      console.log(
        `  pool (held ssh2 connection):  median ${stats(pool).median} ms, p90 ${stats(pool).p90} ms`,
      );

      const fresh = await sample(Math.min(n, 40), () => ssh(), 2);
      console.log(
        `  OpenSSH, fresh connection:    median ${stats(fresh).median} ms, p90 ${stats(fresh).p90} ms`,
      );

      await run('ssh', ['-M', '-S', ctl, '-o', 'ControlPersist=120', '-fN', ...base]);
      const master = await sample(n, () => ssh('-S', ctl), 5);
      console.log(
        `  OpenSSH, ControlMaster:       median ${stats(master).median} ms, p90 ${stats(master).p90} ms`,
      );

      console.log(
        '20 at once (the pool: 8 channels per host, the rest queue; OpenSSH: 20 ssh processes on the master)',
      );
      const batches = 15;
      const pool20 = await sample(batches, () =>
        Promise.all(Array.from({ length: 20 }, () => fleet.pool.exec(host, ['true']))),
      );
      const master20 = await sample(batches, () =>
        Promise.all(Array.from({ length: 20 }, () => ssh('-S', ctl))),
      );
      console.log(`  pool:          median ${stats(pool20).median} ms for 20 (p90 ${stats(pool20).p90})`);
      console.log(`  ControlMaster: median ${stats(master20).median} ms for 20 (p90 ${stats(master20).p90})`);
      const connect = await timeIt(async () => {
        fleet.pool.drop(host);
        await fleet.pool.exec(host, ['true']);
      });
      console.log(`  (a new pool connection and its first command: ${round(connect)} ms)`);
      return { pool, fresh, master, pool20, master20, connect };
    });
    const { pool, fresh, master, pool20, master20, connect } = result;
    const ratio = (a: number[], b: number[]) => round(median(a) / median(b));
    console.log(
      `ControlMaster / pool: ×${ratio(master, pool)}, fresh ssh / pool: ×${ratio(fresh, pool)}, ` +
        `20 at once ControlMaster / pool: ×${ratio(master20, pool20)}; peak RSS ${round(peakMb, 0)} MB`,
    );
    report('ssh', {
      host,
      samples: n,
      ms: {
        pool: stats(pool),
        opensshFresh: stats(fresh),
        opensshControlMaster: stats(master),
        pool20: stats(pool20),
        controlMaster20: stats(master20),
        poolConnectAndFirst: round(connect),
      },
      ratios: {
        controlMasterOverPool: ratio(master, pool),
        freshOverPool: ratio(fresh, pool),
        controlMaster20OverPool20: ratio(master20, pool20),
      },
      poolFasterThanControlMaster: median(pool) < median(master),
      peakRssMb: round(peakMb, 0),
      loadavg: os.loadavg().map((x) => round(x)),
    });
  } finally {
    await run('ssh', ['-S', ctl, '-O', 'exit', ...base]).catch(() => undefined);
    fs.rmSync(ctlDir, { recursive: true, force: true });
    await fleet.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
