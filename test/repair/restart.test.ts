import type { Placement } from '../../schema/site';
import type { CheckFleetResult } from '../../protocol/checkFleet';
import type { RepairSiteResult } from '../../protocol/operations';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { checkFleet, deprovisionSite, provisionSite, repairSite } from '../../workflows';
import { testbed } from '../../dev/fleet';
import { openBed, type Bed } from '../support/bed';
import { recordHistory } from '../support/histories';
import { runQm } from '../support/qm';
import { fetchSite, removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { startWorker, type FileWorker } from '../support/temporal';

/**
 * The platform survives its own restart: a restart of `npm start` takes the demo fleet down and up
 * again, which leaves the proxy's nginx stopped, the app hosts' sshfs mounts gone, and the site's
 * containers started again by their engines on the bare mount points (the cron container writes
 * its heartbeat there). The fleet check says so, and with `repair` puts the site back: nginx
 * running, the files mounted and seen by the containers (what they wrote meanwhile set aside), the
 * site serving. A repair of a site in line changes nothing, and says so.
 */

jest.setTimeout(300_000);

let bed: Bed;
let worker: FileWorker;
const site = testSite({ siteId: `rep-r-${Math.random().toString(36).slice(2, 7)}` });
const domain = site.domains![0]!;
let placement: Placement;

beforeAll(async () => {
  bed = await openBed();
  worker = await startWorker(bed);
  placement = (
    await bed.env.client.workflow.execute(provisionSite, {
      taskQueue: worker.taskQueue,
      workflowId: `provision-${site.siteId}`,
      args: [{ site, triggeredBy: 'test' }],
    })
  ).placement;
});

afterAll(async () => {
  try {
    await bed.env.client.workflow.execute(deprovisionSite, {
      taskQueue: worker.taskQueue,
      workflowId: `deprovision-${site.siteId}`,
      args: [{ siteId: site.siteId, skipFinalBackup: true }],
    });
    expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
    for (const host of placement.appHosts)
      await bed.fleet.pool.exec(host, ['rm', '-rf', '--', `/srv/qm/set-aside/${site.siteId}`]);
    await removeGitRepoOnHost(bed.fleet, site.git!.repo);
  } finally {
    await worker?.stop();
    await bed?.close();
  }
});

const repair = (workflowId: string) =>
  bed.env.client.workflow.execute(repairSite, {
    taskQueue: worker.taskQueue,
    workflowId,
    args: [{ siteId: site.siteId, triggeredBy: 'ops:test', drainSeconds: 1 }],
  });

/** The site's containers on its app hosts: id and start time (what a change would renew). */
async function containerStarts(): Promise<string[]> {
  const out: string[] = [];
  for (const host of placement.appHosts) {
    const list = await bed.fleet.docker
      .engine(host)
      .listContainers({ all: true, filters: JSON.stringify({ label: [`qm.site=${site.siteId}`] }) });
    for (const c of list) {
      const info = await bed.fleet.docker.engine(host).getContainer(c.Id).inspect();
      out.push(`${host} ${info.Name} ${info.Id} ${info.State.StartedAt}`);
    }
  }
  return out.sort();
}

/** The route files on the proxy, verbatim. */
const routeFiles = async () =>
  (
    await bed.fleet.pool.exec(placement.proxyHosts[0]!, [
      'sh',
      '-c',
      'cat "$1.conf" "$1.json"',
      'qm',
      `/srv/qm/proxy/sites/${site.siteId}`,
    ])
  ).stdout;

/** Every answer through the proxy, 8 of them: status and the page's first line. */
async function pages(path = '/'): Promise<string[]> {
  const seen: string[] = [];
  for (let n = 0; n < 8; n++) {
    const r = await fetchSite(bed.fleet, domain, path);
    seen.push(`${r.status} ${r.bodyExcerpt.split('\n')[0]}`);
  }
  return seen;
}

async function recordOf() {
  return (await bed.env.client.workflow.getHandle(siteWorkflowId(site.siteId)).query(siteQuery)).record;
}

test('repairing a site that is in line changes nothing, and says so', async () => {
  const [containers, routes] = [await containerStarts(), await routeFiles()];
  const workflowId = `repair-inline-${site.siteId}`;
  const r: RepairSiteResult = await repair(workflowId);
  expect(r).toMatchObject({ status: 'in-line', changed: false, outOfLine: [], state: 'active' });
  for (const [host, h] of Object.entries(r.hosts)) {
    expect([host, h.reachable, h.changed, h.outOfLine]).toEqual([host, true, [], []]);
    expect(h.alreadyRight.length).toBeGreaterThan(0);
  }
  expect(r.hosts[placement.proxyHosts[0]!]!.alreadyRight).toContain('nginx running');
  for (const host of placement.appHosts) {
    expect(r.hosts[host]!.alreadyRight).toEqual(
      expect.arrayContaining(['files mounted', 'app live on initial', 'no standby']),
    );
  }
  expect(Object.values(r.health)).toEqual(placement.proxyHosts.map(() => expect.stringMatching(/^ok/)));
  // nothing was touched: the same containers, started when they were, the same route files
  expect(await containerStarts()).toEqual(containers);
  expect(await routeFiles()).toBe(routes);
  await recordHistory(workflowId, 'repairSite');
});

test('after a restart of the fleet: the check names what the site lacks; with repair it serves again, its files mounted and seen', async () => {
  // what Ctrl-C and `npm start` do to the demo fleet
  testbed.down();
  testbed.up();
  const proxy = placement.proxyHosts[0]!;
  await expect(fetchSite(bed.fleet, domain)).rejects.toThrow(/no HTTP answer/);

  const check = (args: Parameters<typeof checkFleet>[0], id: string): Promise<CheckFleetResult> =>
    bed.env.client.workflow.execute(checkFleet, {
      taskQueue: worker.taskQueue,
      workflowId: id,
      args: [args],
    });
  const seen = await check({ sites: [site.siteId] }, `check-${site.siteId}`);
  expect(seen.failed).toEqual([]);
  expect(seen.repairs).toEqual([]);
  const problems = seen.sites.find((s) => s.siteId === site.siteId)?.problems ?? [];
  expect(problems).toEqual(
    expect.arrayContaining([
      `${proxy}: nginx is not running`,
      ...placement.appHosts.map((h) => `${h}: the shared files are not mounted`),
      ...placement.appHosts.map((h) =>
        expect.stringMatching(new RegExp(`^${h}: app container .* does not see the shared files$`)),
      ),
    ]),
  );

  const checkId = `check-repair-${site.siteId}`;
  const repaired = await check({ sites: [site.siteId], repair: true }, checkId);
  expect(repaired.repairs).toEqual([
    { siteId: site.siteId, workflowId: expect.stringMatching(/^repair:.*:fleet-check-/), started: true },
  ]);
  const r: RepairSiteResult = await bed.env.client.workflow
    .getHandle(repaired.repairs[0]!.workflowId!)
    .result();
  expect(r).toMatchObject({ status: 'repaired', outOfLine: [], state: 'active', triggeredBy: 'fleet-check' });
  await recordHistory(checkId, 'checkFleet.repair');
  expect(r.hosts[proxy]!.changed).toContain('nginx started');
  for (const host of placement.appHosts) expect(r.hosts[host]!.changed).toContain('files mounted');
  // the cron container wrote its heartbeat into the bare directory meanwhile: set aside, not lost
  expect(r.hosts[placement.appHosts[0]!]!.changed).toEqual(
    expect.arrayContaining([
      expect.stringMatching(
        `^files written while they were not mounted set aside in /srv/qm/set-aside/${site.siteId}/`,
      ),
    ]),
  );

  // serving again, from both app servers; the files mounted on both, and seen by both containers
  const served = await pages();
  expect(served.every((p) => p.startsWith(`200 site ${site.siteId} release initial`))).toBe(true);
  expect(new Set(served).size).toBe(2);
  for (const host of placement.appHosts)
    expect(
      testbed
        .exec(host, ['grep', '-c', ` /srv/qm/sites/${site.siteId}/files fuse.sshfs `, '/proc/mounts'])
        .trim(),
    ).toBe('1');
  const probe = `probe-${Date.now()}`;
  await bed.fleet.pool.exec(placement.storageHost, [
    'sh',
    '-c',
    'echo "$1" > "$2"',
    'qm',
    probe,
    `/srv/qm/files/${site.siteId}/${probe}.txt`,
  ]);
  expect(new Set(await pages(`/files/${probe}.txt`))).toEqual(new Set([`200 ${probe}`]));
  expect(await recordOf()).toMatchObject({ state: 'active' });

  // and now it is in line: a fleet check finds nothing, a repair changes nothing
  const after = await check({ sites: [site.siteId], repair: true }, `check-after-${site.siteId}`);
  expect([after.sites, after.repairs]).toEqual([[], []]);
  expect(await repair(`repair-again-${site.siteId}`)).toMatchObject({ status: 'in-line', changed: false });
});

test('qm schedule fleet-check keeps the Schedule that checks and repairs the fleet every 5 minutes', async () => {
  const handle = bed.env.client.schedule.getHandle('fleet-check');
  try {
    expect((await runQm(['schedule', 'fleet-check'], worker.taskQueue)).lines).toEqual([
      'schedule fleet-check: created',
    ]);
    expect((await runQm(['schedule', 'fleet-check'], worker.taskQueue)).lines).toEqual([
      'schedule fleet-check: unchanged',
    ]);
    const d = await handle.describe();
    expect(d.spec.intervals).toEqual([expect.objectContaining({ every: 5 * 60_000 })]);
    expect(d.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'checkFleet',
      taskQueue: worker.taskQueue,
      args: [{ repair: true }],
    });
    expect((await runQm(['schedule', 'fleet-check', '--every', '10'], worker.taskQueue)).lines).toEqual([
      'schedule fleet-check: updated',
    ]);
    expect((await handle.describe()).spec.intervals).toEqual([
      expect.objectContaining({ every: 10 * 60_000 }),
    ]);
  } finally {
    await handle.delete().catch(() => undefined); // no check of every site on the shared test server
  }
});
