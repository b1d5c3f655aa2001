import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { ensureContainer, removeContainer } from '../activities/docker/container';
import { waitHealthy } from '../activities/docker/waitHealthy';
import type { Fleet } from '../activities/fleet';
import { loadProfile } from '../activities/site/profiles';
import { ContainerSpec } from '../schema/container';
import { ensureRepoArgv } from '../activities/git/commands';
import { startDevServer } from '../dev/temporal';
import type { DeployReleaseResult } from '../protocol/operations';
import { Clone } from '../test/deploy/gitBed';
import { testSite } from '../test/support/site';
import { activityRuns, benchFleet, median, printTimeline, report, round } from './lib';

/**
 * Deploy wall time against the number of app servers: the same site deployed with 1, 2, 4 and 8
 * app servers (a bed of 9 hosts: QM_TESTBED_HOSTS=9), each deploy of a new commit (so the fetch is
 * real), through a real Temporal dev server and worker.
 *
 *   QM_TESTBED_HOSTS=9 npm run bench -- deploy [RUNS=3]
 *
 * QM_BENCH_PROFILE=1 prints the last run's timeline of each size (every activity, from its history).
 *
 * Per deploy: wall time (start → result), and each app server's own work, read from the deploy's
 * history (serverWork: its fetch, its app container starts, the health probes of each from the
 * proxies, the slowest of them, and the standby's removal; each activity from the moment a worker
 * picked it up to its result). Overhead = (wall − slowest server's own work) / wall:
 * the lock, the DB snapshot beyond the fetch, the proxy flips (nginx -t and reload), the postDeploy
 * hook, the health checks through the proxy, the pruning and Temporal's own latency. drainSeconds
 * is 0: the drain is a deliberate wait for requests in flight, the same for every size.
 * Targets: wall(8) / wall(1) ≤ 1.5, overhead ≤ 15 %.
 *
 * The named baseline, measured in the same run before each size's deploys: the bed's floor for
 * one container start on N app hosts at once (the test profile's app image, command and
 * healthcheck, created, started and waited healthy through the same pooled Docker API, then
 * removed), with no orchestration at all. A deploy starts two containers per server, so
 * wall(8)/wall(1) cannot be better than this floor's own floor(8)/floor(1) on the same bed.
 */
const RUNS = Number(process.argv[2] ?? 3);
/** QM_BENCH_SIZES=1,8 measures only those sizes (the ratio needs 1 and 8). */
const SIZES = (process.env.QM_BENCH_SIZES ?? '1,2,4,8').split(',').map(Number);
/** QM_BENCH_DRAIN=10: the deploys' drainSeconds (0 by default: the same at every size). */
const DRAIN_SECONDS = Number(process.env.QM_BENCH_DRAIN ?? 0);

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
  const floorRows: { servers: number; floorMs: number }[] = [];
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
        const floor = await containerFloor(fleet, site.appServers ?? 1, tag);
        floorRows.push({ servers: site.appServers ?? 1, floorMs: floor });
        console.log(
          `${site.appServers} app server(s), run ${run}: floor (one container start on each at once) ${floor} ms`,
        );
        const t0 = Date.now();
        const r: DeployReleaseResult = await client.workflow.execute('deployRelease', {
          taskQueue,
          workflowId: `deploy-${site.siteId}-${run}`,
          args: [{ siteId: site.siteId, commit, drainSeconds: DRAIN_SECONDS, triggeredBy: 'bench' }],
        });
        const wall = Date.now() - t0;
        if (r.status !== 'deployed') throw new Error(`${site.siteId}: ${r.status}`);
        const work = Object.values(await serverWork(client, `deploy-${site.siteId}-${run}`));
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
    if (process.env.QM_BENCH_PROFILE === '1')
      for (const site of sites) await printTimeline(client, `deploy-${site.siteId}-${RUNS - 1}`);
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
          floorMs: median(floorRows.filter((r) => r.servers === n).map((r) => r.floorMs)),
        },
      ];
    }),
  );
  const [one, eight] = [bySize[1], bySize[8]];
  const ratio = one && eight ? round(eight.wallMs / one.wallMs, 2) : undefined;
  const floorRatio = one && eight ? round(eight.floorMs / one.floorMs, 2) : undefined;
  console.log(
    `\nmedians: ${JSON.stringify(bySize)}\nwall(8)/wall(1) = ${ratio} (target ≤ 1.5); ` +
      `the bed's floor for one container start, floor(8)/floor(1) = ${floorRatio}`,
  );
  report('deploy', { runs: RUNS, bySize, wall8over1: ratio, floor8over1: floorRatio });
}

/**
 * Per app host, the milliseconds of its own work in a deploy, from the deploy's history: its
 * fetch, its app containers' starts, each start's health probes from the proxies (the slowest of
 * them: they run at once) and the standby's removal, each from the moment a worker picked the
 * activity up to its result (so the task queue's latency is overhead, not the server's work).
 */
async function serverWork(client: Client, workflowId: string): Promise<Record<string, number>> {
  const work: Record<string, number> = {};
  const probes = new Map<string, number>();
  for (const a of await activityRuns(client, workflowId)) {
    const ms = a.closedAt - a.startedAt;
    const input = a.input as { host?: string; role?: string; backendHost?: string; port?: number };
    if (
      a.type === 'fetchRelease' ||
      a.type === 'removeStandbyContainer' ||
      (a.type === 'ensureReleaseContainer' && input.role === 'app')
    )
      work[input.host!] = (work[input.host!] ?? 0) + ms;
    else if (a.type === 'probeBackend') {
      const key = JSON.stringify([input.backendHost, input.port]);
      probes.set(key, Math.max(probes.get(key) ?? 0, ms));
    }
  }
  for (const [key, ms] of probes) {
    const [host] = JSON.parse(key) as [string];
    work[host] = (work[host] ?? 0) + ms;
  }
  return Object.fromEntries(Object.entries(work).map(([host, ms]) => [host, Math.round(ms)]));
}

/**
 * The baseline: one app container (the test profile's image, command and healthcheck) created,
 * started and healthy on the first `n` app hosts at once, through the same pooled Docker API the
 * deploy uses; then removed (not timed). Milliseconds from the first create to the last healthy.
 */
async function containerFloor(fleet: Fleet, n: number, tag: string): Promise<number> {
  const profile = await loadProfile('test-busybox');
  const app = profile.containers.app;
  const hosts = fleet.hosts.filter((h) => h.roles.includes('app')).slice(0, n);
  const spec = ContainerSpec.parse({
    name: `bench-floor-${tag}`,
    image: app.image,
    cmd: ['sh', '-c', 'mkdir -p /srv/www && echo ok > /srv/www/health && exec httpd -f -p 80 -h /srv/www'],
    ports: [{ containerPort: app.port, hostPort: 29_999 }],
    healthcheck: app.healthcheck,
    memoryMb: app.memoryMb,
  });
  const t0 = Date.now();
  await Promise.all(
    hosts.map(async (h) => {
      await ensureContainer(fleet, h.name, spec);
      await waitHealthy(fleet, h.name, spec.name, 60_000);
    }),
  );
  const ms = Date.now() - t0;
  await Promise.all(hosts.map((h) => removeContainer(fleet, h.name, spec.name)));
  return ms;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
