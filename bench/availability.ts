import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { openFleet } from '../activities/fleet';
import { ensureRepoArgv } from '../activities/git/commands';
import { CLIENT_KEY, testbed } from '../dev/fleet';
import { startDevServer } from '../dev/temporal';
import { Clone } from '../test/deploy/gitBed';
import { FAILED, startLoad, type RequestResult } from '../test/support/load';
import { APP_HOSTS, phpSite, SITE_LAYOUT } from '../test/support/phpSite';
import { percentile, report, round } from './lib';

/**
 * What visitors of a PHP + MariaDB site (profiles/test-php.yaml: every page records a visit in the
 * database) feel while ops operate it: the site on two app servers behind two proxy hosts (the
 * bed's hosts in the layout of test/site, host4 made for it), driven by a bounded load (RATE
 * requests a second, one in ten on a page that takes 2 s, each on a fresh connection, round robin
 * over the proxies), through a real Temporal dev server and worker.
 *
 *   npm run bench -- availability [RATE=50]
 *
 * For each operation (a deploy with a schema migration, a rollback, a patch roll that reboots
 * both app servers, a restore of a backup, a suspension and its resume): the same load for
 * BEFORE_S seconds with nothing running, then while the operation runs (and a second after).
 * Per operation: requests sent, served, answered with the proxy's own page (503 suspended or
 * maintenance: by design), failed (any other 5xx, a reset, a timeout of 10 s), and the latency
 * of the fast pages (p50, p99) before and during. Targets: 0 failed in deploy, rollback and patch
 * roll; p99 during a deploy ≤ 2× p99 before.
 */
const RATE = Number(process.argv[2] ?? 50);
const BEFORE_S = 10;

interface Phase {
  sent: number;
  served: number;
  proxyPages: number;
  failed: number;
  /** Of the fast pages (`/`) served. */
  p50: number;
  p99: number;
  failures: string[];
}

function phase(results: RequestResult[]): Phase {
  const fast = results.filter((r) => r.outcome === 'served' && r.path === '/').map((r) => r.ms);
  const failed = results.filter((r) => FAILED.includes(r.outcome));
  return {
    sent: results.length,
    served: results.filter((r) => r.outcome === 'served').length,
    proxyPages: results.filter((r) => r.outcome === 'site-page').length,
    failed: failed.length,
    p50: fast.length ? percentile(fast, 50) : NaN,
    p99: fast.length ? percentile(fast, 99) : NaN,
    failures: failed
      .slice(0, 5)
      .map((r) => `${r.path} via ${r.proxy}: ${r.outcome} ${r.status ?? ''} ${r.error ?? ''}`),
  };
}

async function main() {
  if (!testbed.isUp()) testbed.up();
  const inventoryPath = testbed.layout('site', SITE_LAYOUT);
  testbed.phpImage(APP_HOSTS);
  const fleet = openFleet({ inventoryPath, privateKeyPath: CLIENT_KEY });
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ headless: true });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-availability';
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
  const repo = `bench/avail-${tag}.git`;
  const gitHost = fleet.hosts.find((h) => h.roles.includes('git'))!.name;
  await fleet.pool.exec(gitHost, ensureRepoArgv(repo));
  const clone = await Clone.create(fleet, repo);
  const site = phpSite({ siteId: `avail-${tag}`, git: { repo, branch: 'main' } });
  const { siteId } = site;
  const domain = site.domains[0]!;
  const ops: Record<string, { before: Phase; during: Phase; seconds: number }> = {};
  const run = (workflow: string, args: unknown, id = workflow) =>
    client.workflow.execute(workflow, {
      taskQueue,
      workflowId: `${id}-${siteId}-${Date.now()}`,
      args: [args],
    });

  /** The load before (nothing running), then during `op` (and a second after it). */
  async function measure(name: string, op: () => Promise<unknown>) {
    const load = (what: string, seconds: number) =>
      startLoad(fleet, {
        domain,
        rate: RATE,
        total: Math.ceil(RATE * seconds),
        slowShare: 0.1,
        tag: `${tag}-${name}-${what}`,
      });
    const before = await load('before', BEFORE_S).done;
    const during = load('during', Math.min(300, 20_000 / RATE)); // bounded: 5 minutes at most
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    await op();
    const seconds = round((Date.now() - t0) / 1000, 1);
    await new Promise((r) => setTimeout(r, 1000));
    ops[name] = { before: phase(before), during: phase(await during.stop()), seconds };
    const { before: b, during: d } = ops[name];
    console.log(
      `${name.padEnd(10)} ${String(seconds).padStart(5)} s: during ${d.sent} sent, ${d.served} served, ` +
        `${d.proxyPages} proxy pages, ${d.failed} failed; fast pages p50 ${b.p50} → ${d.p50} ms, p99 ${b.p99} → ${d.p99} ms`,
    );
    for (const f of d.failures) console.log(`    ${f}`);
  }

  try {
    await run('provisionSite', { site, triggeredBy: 'bench' }, 'provision');
    // a first load, not measured: the site's caches and the database's buffers warm
    await startLoad(fleet, { domain, rate: RATE, total: RATE * 5, slowShare: 0.1, tag: `${tag}-warm-up` })
      .done;
    const { commit } = await clone.push('main', {
      'migrations/0001_summary.sql':
        "ALTER TABLE content ADD COLUMN summary VARCHAR(255) NOT NULL DEFAULT '';\n",
    });
    await measure('deploy', () => run('deployRelease', { siteId, commit, triggeredBy: 'bench' }, 'deploy'));
    await measure('rollback', () =>
      run('rollbackSite', { siteId, release: 'initial', triggeredBy: 'bench' }, 'rollback'),
    );
    await measure('patch-roll', () =>
      run(
        'patchRoll',
        {
          hosts: { names: APP_HOSTS },
          canary: false,
          reboot: 'always',
          patchCommand: ['true'],
          drainTimeoutSeconds: 10,
          triggeredBy: 'bench',
        },
        'patch-roll',
      ),
    );
    const backup = (await run('backupSite', { siteId, prune: false, triggeredBy: 'bench' }, 'backup')) as {
      backupId: string;
    };
    await measure('restore', () =>
      run('restoreSite', { siteId, backupId: backup.backupId, triggeredBy: 'bench' }, 'restore'),
    );
    await measure('suspend', async () => {
      await run('suspendSite', { siteId, reason: 'bench', triggeredBy: 'bench' }, 'suspend');
      await new Promise((r) => setTimeout(r, 2000));
      await run('resumeSite', { siteId, triggeredBy: 'bench' }, 'resume');
    });
  } finally {
    await run('deprovisionSite', { siteId, skipFinalBackup: true }, 'deprovision').catch((err: unknown) =>
      console.error(`deprovision ${siteId}: ${String(err)}`),
    );
    await fleet.pool.exec(gitHost, ['rm', '-rf', '--', `/srv/git/${repo}`]);
    clone.remove();
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await server.stop();
    await fleet.close();
  }

  const deploy = ops.deploy!;
  const p99Ratio = round(deploy.during.p99 / deploy.before.p99, 2);
  const failedWhereZero = ['deploy', 'rollback', 'patch-roll'].reduce(
    (n, op) => n + (ops[op]?.during.failed ?? 0),
    0,
  );
  console.log(
    `\nfailed in deploy, rollback and patch roll: ${failedWhereZero} (target 0); ` +
      `p99 during a deploy / before: ${p99Ratio} (target ≤ 2)`,
  );
  report('availability', {
    rate: RATE,
    slowShare: 0.1,
    proxies: fleet.hosts.filter((h) => h.roles.includes('proxy')).length,
    ops: Object.fromEntries(
      Object.entries(ops).map(([name, { before, during, seconds }]) => [
        name,
        {
          seconds,
          sent: during.sent,
          served: during.served,
          proxyPages: during.proxyPages,
          failed: during.failed,
          p50: [before.p50, during.p50],
          p99: [before.p99, during.p99],
        },
      ]),
    ),
    failedWhereZero,
    deployP99DuringOverBefore: p99Ratio,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
