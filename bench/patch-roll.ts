import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Fleet } from '../activities/fleet';
import { PATCH_STATE_DIR } from '../activities/host/commands';
import { proxyPaths, sitePaths } from '../activities/proxy/layout';
import { quoteArgv } from '../activities/ssh/quote';
import type { Placement } from '../schema/site';
import { testSite } from '../test/support/site';
import { CLIENT_KEY, TESTBED_DIR } from '../dev/fleet';
import { startDevServer } from '../dev/temporal';
import type { deprovisionSite, patchRoll, provisionSite } from '../workflows';
import { benchFleet, median, printTimeline, report, round } from './lib';

/**
 * One serial patch roll over the bed's app hosts, three ways, on the same hosts and the same site
 * (one site on every app host, behind the real nginx on the proxy host):
 *   - patchRoll (Temporal, the worker's SSH pool), batchSize 1, no canary, no reboot;
 *   - ansible-playbook, `serial: 1` (Debian's ansible-core, installed here if missing);
 *   - a plain bash script of OpenSSH commands over ControlMaster connections: the floor.
 * Each host, in each: drain its backend on the proxy (nginx config + reload), the patch command,
 * the backend's health from the proxy host, readmit, the site's health through the proxy. The
 * Ansible and script drains edit the nginx config in place and HUP nginx; patchRoll does more
 * (site discovery, site locks, the drain/maintenance decision, the guard, the reboot check, its
 * containers checked) and waits for nginx's old workers to finish on every reload.
 *
 *   QM_TESTBED_HOSTS=4 npm run bench -- patch-roll [RUNS=3]     (4 hosts: 3 app hosts)
 */
const RUNS = Number(process.argv[2] ?? 3);
const run = promisify(execFile);
const MARKER = '/root/qm-bench-patch-marker';
const PATCH = ['sh', '-c', `echo patched >> ${MARKER}`];

/** Drain (or readmit) one backend by editing the site's nginx config on the proxy host, then test and HUP. */
const EDIT_AND_RELOAD = `set -e
conf=$1 host=$2 to=$3 d=${proxyPaths.dir}
if [ "$to" = drained ]; then
  sed -i "s|^\\(    server [^ ]*\\) max_fails=1 fail_timeout=10s; # $host\\$|\\1 down; # $host, drained|" "$conf"
else
  sed -i "s|^\\(    server [^ ]*\\) down; # $host, drained\\$|\\1 max_fails=1 fail_timeout=10s; # $host|" "$conf"
fi
/usr/sbin/nginx -q -p "$d/" -c "$d/nginx.conf" -e "$d/logs/error.log" -t
kill -HUP "$(cat ${proxyPaths.pid})"`;

interface Setup {
  fleet: Fleet;
  siteId: string;
  domain: string;
  placement: Placement;
  proxy: { name: string; address: string };
  apps: { name: string; address: string }[];
}

async function main() {
  const fleet = benchFleet();
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed already
  }
  ensureAnsible();
  const server = await startDevServer({
    headless: true,
    logFile: path.join(TESTBED_DIR, 'logs', 'bench-temporal.log'),
  });
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const taskQueue = 'bench-patch-roll';
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
    await worker.runUntil(async () => {
      const apps = fleet.hosts.filter((h) => h.roles.includes('app'));
      const spec = testSite({ appServers: Math.min(apps.length, 8) });
      const provisioned = await client.workflow.execute<typeof provisionSite>('provisionSite', {
        taskQueue,
        workflowId: `bench-provision-${spec.siteId}`,
        args: [{ site: spec }],
      });
      const proxy = fleet.hosts.find((h) => h.name === provisioned.placement.proxyHosts[0])!;
      const s: Setup = {
        fleet,
        siteId: spec.siteId,
        domain: spec.domains[0]!,
        placement: provisioned.placement,
        proxy,
        apps: provisioned.placement.appHosts.map((n) => fleet.hosts.find((h) => h.name === n)!),
      };
      console.log(
        `site ${s.siteId} on ${s.placement.appHosts.join(', ')} behind ${proxy.name}; ${RUNS} runs each`,
      );
      try {
        const ours: number[] = [];
        const ansible: number[] = [];
        const script: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          ours.push(await timed(() => roll(client, taskQueue, s, i)));
          await checkMarkers(s, 3 * i + 1);
          ansible.push(await timed(() => ansibleRoll(s)));
          await checkMarkers(s, 3 * i + 2);
          script.push(await timed(() => scriptRoll(s)));
          await checkMarkers(s, 3 * i + 3);
          console.log(
            `run ${i + 1}: patchRoll ${ours[i]} ms, ansible ${ansible[i]} ms, ControlMaster script ${script[i]} ms`,
          );
        }
        if (process.env.QM_BENCH_PROFILE === '1')
          await printTimeline(client, `bench-patch-roll-${s.siteId}-${RUNS - 1}`);
        const [o, a, c] = [median(ours), median(ansible), median(script)];
        console.log(
          `median: patchRoll ${o} ms, ansible-playbook ${a} ms (×${round(a / o, 1)} slower), ` +
            `ControlMaster script ${c} ms (patchRoll is ×${round(o / c, 2)} of it)`,
        );
        report('patch-roll', {
          hosts: s.apps.length,
          commandsPerHost: 5,
          runs: RUNS,
          patchRollMs: o,
          ansibleMs: a,
          scriptMs: c,
          patchRollToAnsible: round(o / a, 3),
          patchRollToScript: round(o / c, 2),
          allRunsMs: { patchRoll: ours, ansible, script },
        });
      } finally {
        await client.workflow.execute<typeof deprovisionSite>('deprovisionSite', {
          taskQueue,
          workflowId: `bench-deprovision-${s.siteId}`,
          args: [{ siteId: s.siteId, skipFinalBackup: true }],
        });
        for (const h of s.apps) await fleet.pool.exec(h.name, ['rm', '-rf', MARKER, PATCH_STATE_DIR]);
      }
    });
  } finally {
    await server.stop();
    await fleet.close();
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
}

/** Every way patched every host once per run: the marker has one line per roll. */
async function checkMarkers(s: Setup, expected: number) {
  for (const h of s.apps) {
    const r = await s.fleet.pool.exec(h.name, ['sh', '-c', 'wc -l < "$1"', 'qm', MARKER]);
    if (Number(r.stdout.trim()) !== expected)
      throw new Error(`${h.name}: ${r.stdout.trim()} patch runs, expected ${expected}`);
  }
  const route = await createActivities(s.fleet).readSiteRoute({ host: s.proxy.name, siteId: s.siteId });
  if (!route || route.backends.some((b) => b.state !== 'active'))
    throw new Error('a backend was left drained');
}

async function roll(client: Client, taskQueue: string, s: Setup, i: number) {
  const result = await client.workflow.execute<typeof patchRoll>('patchRoll', {
    taskQueue,
    workflowId: `bench-patch-roll-${s.siteId}-${i}`,
    args: [
      { hosts: { names: s.apps.map((h) => h.name) }, canary: false, reboot: 'never', patchCommand: PATCH },
    ],
  });
  if (result.status !== 'completed' || result.done.length !== s.apps.length)
    throw new Error(`patchRoll did not complete: ${JSON.stringify(result)}`);
}

function ensureAnsible() {
  try {
    execFileSync('ansible-playbook', ['--version'], { stdio: 'ignore' });
  } catch {
    console.log('installing Debian ansible-core (apt-get install -y ansible-core)');
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'ansible-core'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
}

const sshOptions = (controlDir?: string) => [
  '-i',
  CLIENT_KEY,
  '-o',
  `UserKnownHostsFile=${path.join(TESTBED_DIR, 'keys', 'known_hosts')}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'BatchMode=yes',
  ...(controlDir
    ? ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir}/%h`, '-o', 'ControlPersist=60']
    : []),
];

async function ansibleRoll(s: Setup) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-ansible-'));
  try {
    const conf = sitePaths(s.siteId).conf;
    fs.writeFileSync(
      path.join(dir, 'inventory.ini'),
      [
        '[app]',
        ...s.apps.map((h) => `${h.name} ansible_host=${h.address}`),
        '[proxy]',
        `${s.proxy.name} ansible_host=${s.proxy.address}`,
        '[all:vars]',
        'ansible_user=root',
        `ansible_ssh_private_key_file=${CLIENT_KEY}`,
        'ansible_python_interpreter=/usr/bin/python3',
        `ansible_ssh_common_args='${sshOptions().slice(2).join(' ')}'`,
        '',
      ].join('\n'),
    );
    const edit = (to: string) =>
      JSON.stringify(['sh', '-c', EDIT_AND_RELOAD, 'qm', conf, '{{ inventory_hostname }}', to]);
    const health = (url: string) =>
      JSON.stringify(['curl', '-sf', '-o', '/dev/null', '-H', `Host: ${s.domain}`, url]);
    fs.writeFileSync(
      path.join(dir, 'roll.yml'),
      `- hosts: app
  serial: 1
  gather_facts: false
  tasks:
    - name: drain
      delegate_to: ${s.proxy.name}
      command: { argv: ${edit('drained')} }
    - name: patch
      command: { argv: ${JSON.stringify(PATCH)} }
    - name: backend health from the proxy
      delegate_to: ${s.proxy.name}
      command: { argv: ${health(`http://{{ hostvars[inventory_hostname].ansible_host }}:${s.placement.port}/health`)} }
    - name: readmit
      delegate_to: ${s.proxy.name}
      command: { argv: ${edit('active')} }
    - name: health through the proxy
      delegate_to: localhost
      connection: local
      command: { argv: ${health(`http://${s.proxy.address}/health`)} }
`,
    );
    await run('ansible-playbook', ['-i', path.join(dir, 'inventory.ini'), path.join(dir, 'roll.yml')], {
      env: {
        ...process.env,
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_RETRY_FILES_ENABLED: '0',
        ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
        ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'cp'),
      },
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function scriptRoll(s: Setup) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-cm-'));
  try {
    const ssh = (host: { address: string }, argv: string[]) =>
      quoteArgv(['ssh', ...sshOptions(dir), `root@${host.address}`, quoteArgv(argv)]);
    const curl = (url: string) => ['curl', '-sf', '-o', '/dev/null', '-H', `Host: ${s.domain}`, url];
    const conf = sitePaths(s.siteId).conf;
    const lines = ['set -euo pipefail'];
    for (const h of s.apps)
      lines.push(
        ssh(s.proxy, ['sh', '-c', EDIT_AND_RELOAD, 'qm', conf, h.name, 'drained']),
        ssh(h, PATCH),
        ssh(s.proxy, curl(`http://${h.address}:${s.placement.port}/health`)),
        ssh(s.proxy, ['sh', '-c', EDIT_AND_RELOAD, 'qm', conf, h.name, 'active']),
        quoteArgv(curl(`http://${s.proxy.address}/health`)),
      );
    lines.push(
      `for c in ${quoteArgv([dir])}/*; do ssh -o ControlPath="$c" -O exit x 2>/dev/null || true; done`,
    );
    fs.writeFileSync(path.join(dir, 'roll.sh'), lines.join('\n') + '\n');
    await run('bash', [path.join(dir, 'roll.sh')]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
