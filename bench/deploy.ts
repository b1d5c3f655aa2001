import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ensureRepoArgv } from '../activities/git/commands';
import { startDevServer } from '../workers/devServer';
import type { DeployReleaseResult } from '../workflows/deployRelease';
import { Clone } from '../test/deploy/gitBed';
import { testSite } from '../test/support/site';
import { benchFleet, median, report, round } from './lib';

/**
 * Deploy wall time against the number of app servers: the same site deployed with 1, 2, 4 and 8
 * app servers (a bed of 9 hosts: QM_TESTBED_HOSTS=9), each deploy of a new commit (so the fetch is
 * real), through a real Temporal dev server and worker.
 *
 *   QM_TESTBED_HOSTS=9 npm run bench -- deploy [RUNS=3]
 *
 * Per deploy: wall time (start → result), and each app server's own work as the deploy reports it
 * (serverWorkMs: its fetch, container starts, health probes from the proxy and the standby's
 * removal, measured inside the activities). Overhead = (wall − slowest server's own work) / wall:
 * the lock, the DB snapshot beyond the fetch, the proxy flips (nginx -t and reload), the postDeploy
 * hook, the health checks through the proxy, the pruning and Temporal's own latency. drainSeconds
 * is 0: the drain is a deliberate wait for requests in flight, the same for every size.
 * Targets: wall(8) / wall(1) ≤ 1.5, overhead ≤ 15 %.
 */
const RUNS = Number(process.argv[2] ?? 3);
const SIZES = [1, 2, 4, 8];

async function main() {
  const fleet = benchFleet();
  const apps = fleet.hosts.filter((h) => h.roles.includes('app')).length;
  if (apps < Math.max(...SIZES))
    throw new Error(`the bed has ${apps} app hosts; run with QM_TESTBED_HOSTS=9`);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ headless: true });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-deploy';
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: { code },
    activities: createActivities(fleet, { temporal: client, taskQueue }),
  });
  const running = worker.run();

  const tag = Math.random().toString(36).slice(2, 6);
  const repo = `bench/deploy-${tag}.git`;
  const gitHost = fleet.hosts.find((h) => h.roles.includes('git'))!.name;
  await fleet.pool.exec(gitHost, ensureRepoArgv(repo)); // no hook: the bench starts its deploys itself (provision finds it)
  const clone = await Clone.create(fleet, repo);
  const sites = SIZES.map((n) =>
    testSite({ siteId: `bench-${n}-${tag}`, appServers: n, git: { repo, branch: 'main' } }),
  );
  const rows: Record<string, unknown>[] = [];
  try {
    for (const site of sites) {
      await client.workflow.execute('provisionSite', {
        taskQueue,
        workflowId: `provision-${site.siteId}`,
        args: [{ site }],
      });
    }
    for (let run = 0; run < RUNS; run++) {
      const { commit } = await clone.push('main', {
        VERSION: `run ${run}\n`,
        'payload.txt': 'x'.repeat(1 << 20),
      });
      for (const site of sites) {
        const t0 = Date.now();
        const r: DeployReleaseResult = await client.workflow.execute('deployRelease', {
          taskQueue,
          workflowId: `deploy-${site.siteId}-${run}`,
          args: [{ siteId: site.siteId, commit, drainSeconds: 0, triggeredBy: 'bench' }],
        });
        const wall = Date.now() - t0;
        if (r.status !== 'deployed') throw new Error(`${site.siteId}: ${r.status}`);
        const work = Object.values(r.serverWorkMs ?? {});
        const slowest = Math.max(...work);
        rows.push({
          servers: site.appServers,
          run,
          wallMs: wall,
          slowestServerMs: slowest,
          overhead: (wall - slowest) / wall,
        });
        console.log(
          `${site.appServers} app server(s), run ${run}: wall ${wall} ms, slowest server ${slowest} ms ` +
            `(servers ${work.map((w) => Math.round(w)).join(', ')}), overhead ${round((100 * (wall - slowest)) / wall, 1)} %`,
        );
      }
    }
  } finally {
    for (const site of sites) {
      await client.workflow
        .execute('deprovisionSite', {
          taskQueue,
          workflowId: `deprovision-${site.siteId}`,
          args: [{ siteId: site.siteId, skipFinalBackup: true }],
        })
        .catch((err: unknown) => console.error(`deprovision ${site.siteId}: ${String(err)}`));
    }
    await fleet.pool.exec(gitHost, ['rm', '-rf', '--', `/srv/git/${repo}`]);
    clone.remove();
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await server.stop();
    await fleet.close();
  }

  const bySize = Object.fromEntries(
    SIZES.map((n) => {
      const mine = rows.filter((r) => r.servers === n);
      return [
        n,
        {
          wallMs: median(mine.map((r) => r.wallMs as number)),
          slowestServerMs: median(mine.map((r) => r.slowestServerMs as number)),
          overhead: round(median(mine.map((r) => r.overhead as number)), 3),
        },
      ];
    }),
  );
  const ratio = round(bySize[8]!.wallMs / bySize[1]!.wallMs, 2);
  console.log(`\nmedians: ${JSON.stringify(bySize)}\nwall(8)/wall(1) = ${ratio} (target ≤ 1.5)`);
  report('deploy', { runs: RUNS, bySize, wall8over1: ratio });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
