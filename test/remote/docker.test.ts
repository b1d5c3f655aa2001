import { randomBytes } from 'node:crypto';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type Docker from 'dockerode';
import { makeDockerActivities, type DockerActivities } from '../../activities/docker/activities';
import { ensureContainer, removeContainer, stopContainer } from '../../activities/docker/container';
import { ensureImage } from '../../activities/docker/image';
import { ensureNetwork, removeNetwork } from '../../activities/docker/network';
import { ensureVolume, removeVolume } from '../../activities/docker/volume';
import { waitHealthy } from '../../activities/docker/waitHealthy';
import { listContainers } from '../../activities/docker/listContainers';
import { ContainerSpec, type ContainerSpecInput } from '../../schema/container';
import { openBed, type Bed } from '../support/bed';
import { withWorker } from '../support/temporal';
import { testbed } from '../../dev/fleet';
import { runActivity } from '../workflows/runActivity';

/**
 * The Docker activities against the real test bed's engines, through the pooled SSH connection.
 * Every object a test creates carries the label qm.test=1 and a per-run name prefix, and afterAll
 * removes them all (containers, networks, volumes, image tags) whatever the tests did.
 */

const run = randomBytes(3).toString('hex');
const n = (what: string) => `qmt-${run}-${what}`;
const TEST_LABELS = { 'qm.test': '1', 'qm.test-run': run };
const BUSYBOX = 'local/busybox:1';
const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www'];

let bed: Bed;
let acts: DockerActivities;
const imageTags: { host: string; ref: string }[] = [];

const spec = (over: Partial<ContainerSpecInput> & { name: string }): ContainerSpec =>
  ContainerSpec.parse({ image: BUSYBOX, cmd: HTTPD, labels: TEST_LABELS, ...over });

/** The engine's own view, for checking outcomes (not through the code under test). */
const inspect = (host: string, name: string): Promise<Docker.ContainerInspectInfo | undefined> =>
  bed.fleet.docker
    .engine(host)
    .getContainer(name)
    .inspect()
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode === 404) return undefined;
      throw err;
    });

async function thrown(work: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await work;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  bed = await openBed();
  acts = makeDockerActivities(bed.fleet);
});

afterAll(async () => {
  if (!bed) return;
  // make sure host3's engine is back even if the engine-down test failed half-way
  if (
    !(await bed.fleet.docker
      .engine('host3')
      .ping()
      .then(
        () => true,
        () => false,
      ))
  )
    testbed.start('host3', 'docker');
  for (const host of bed.fleet.pool.hostNames()) {
    const engine = bed.fleet.docker.engine(host);
    const filters = JSON.stringify({ label: ['qm.test=1'] });
    for (const c of await engine.listContainers({ all: true, filters }))
      await engine.getContainer(c.Id).remove({ force: true, v: true });
    for (const net of await engine.listNetworks({ filters })) await engine.getNetwork(net.Id).remove();
    for (const v of (await engine.listVolumes({ filters })).Volumes ?? [])
      await engine.getVolume(v.Name).remove();
  }
  for (const { host, ref } of imageTags)
    await bed.fleet.docker
      .engine(host)
      .getImage(ref)
      .remove()
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
  await bed.close();
});

describe('ensureContainer / stopContainer / removeContainer', () => {
  test('a second ensure leaves the container alone; a spec change replaces it', async () => {
    const name = n('web');
    const first = await ensureContainer(bed.fleet, 'host1', spec({ name }));
    expect(first.action).toBe('created');
    const seen = await inspect('host1', name);
    expect(seen?.Id).toBe(first.id);
    expect(seen?.State.Running).toBe(true);
    expect(seen?.HostConfig.Init).toBe(true);

    const second = await ensureContainer(bed.fleet, 'host1', spec({ name }));
    expect(second).toEqual({ id: first.id, action: 'unchanged' });
    expect((await inspect('host1', name))?.State.StartedAt).toBe(seen?.State.StartedAt); // not restarted

    const changed = await ensureContainer(
      bed.fleet,
      'host1',
      spec({ name, env: { SITE_MODE: 'maintenance' } }),
    );
    expect(changed.action).toBe('replaced');
    expect(changed.id).not.toBe(first.id);
    expect(await inspect('host1', first.id)).toBeUndefined(); // the old one is gone
    const now = await inspect('host1', name);
    expect(now?.Id).toBe(changed.id);
    expect(now?.Config.Env).toContain('SITE_MODE=maintenance');
    expect(
      (await ensureContainer(bed.fleet, 'host1', spec({ name, env: { SITE_MODE: 'maintenance' } }))).action,
    ).toBe('unchanged');
  });

  test('the same spec on a re-pointed image tag replaces the container (a new build of that tag)', async () => {
    const h1 = bed.fleet.docker.engine('host1');
    const repo = `local/qmtest-${run}`;
    const ref = `${repo}:app`;
    imageTags.push({ host: 'host1', ref });
    await h1.getImage(BUSYBOX).tag({ repo, tag: 'app' });
    const name = n('retag');
    const first = await ensureContainer(bed.fleet, 'host1', spec({ name, image: ref }));
    expect((await ensureContainer(bed.fleet, 'host1', spec({ name, image: ref }))).action).toBe('unchanged');

    const builder = await h1.createContainer({ Image: BUSYBOX, Cmd: ['true'], Labels: TEST_LABELS });
    await builder.commit({ repo, tag: 'app' }); // the tag now names another image
    const second = await ensureContainer(bed.fleet, 'host1', spec({ name, image: ref }));
    expect(second.action).toBe('replaced');
    expect((await inspect('host1', name))?.Image).toBe((await h1.getImage(ref).inspect()).Id);
    expect(second.id).not.toBe(first.id);
  });

  test('stop twice is fine, ensure starts a stopped one, remove twice is fine', async () => {
    const name = n('stop');
    const { id } = await ensureContainer(bed.fleet, 'host2', spec({ name }));

    const t0 = Date.now();
    expect(await stopContainer(bed.fleet, 'host2', name)).toEqual({ result: 'stopped' });
    // with init as PID 1, httpd (which ignores SIGTERM itself) stops at once, not after the 10 s timeout
    expect(Date.now() - t0).toBeLessThan(9000);
    expect((await inspect('host2', name))?.State.Running).toBe(false);
    expect(await stopContainer(bed.fleet, 'host2', name)).toEqual({ result: 'already-stopped' });

    expect(await ensureContainer(bed.fleet, 'host2', spec({ name }))).toEqual({ id, action: 'started' });
    expect((await inspect('host2', name))?.State.Running).toBe(true);

    expect(await removeContainer(bed.fleet, 'host2', name)).toEqual({ result: 'removed' });
    expect(await inspect('host2', name)).toBeUndefined();
    expect(await removeContainer(bed.fleet, 'host2', name)).toEqual({ result: 'absent' });
    expect(await stopContainer(bed.fleet, 'host2', name)).toEqual({ result: 'absent' });
  });

  test('a container of that name that we did not create is a Conflict and is left alone', async () => {
    const name = n('foreign');
    const engine = bed.fleet.docker.engine('host1');
    const foreign = await engine.createContainer({ name, Image: BUSYBOX, Cmd: HTTPD, Labels: TEST_LABELS });
    const f = await thrown(ensureContainer(bed.fleet, 'host1', spec({ name })));
    expect(f.type).toBe('Conflict');
    expect(f.nonRetryable).toBe(true);
    expect((await thrown(removeContainer(bed.fleet, 'host1', name))).type).toBe('Conflict');
    expect((await thrown(stopContainer(bed.fleet, 'host1', name))).type).toBe('Conflict');
    expect((await inspect('host1', name))?.Id).toBe(foreign.id);
  });

  test('a name that is an id prefix of another container is not mistaken for it', async () => {
    const { id } = await ensureContainer(bed.fleet, 'host1', spec({ name: n('prefix') }));
    const prefix = id.slice(0, 12); // a valid name, and a unique id prefix...
    expect((await bed.fleet.docker.engine('host1').getContainer(prefix).inspect()).Id).toBe(id); // ...the engine resolves
    expect(await stopContainer(bed.fleet, 'host1', prefix)).toEqual({ result: 'absent' });
    expect(await removeContainer(bed.fleet, 'host1', prefix)).toEqual({ result: 'absent' });
    expect((await inspect('host1', id))?.State.Running).toBe(true);
  });

  test('a name with shell metacharacters is rejected before anything is created', async () => {
    const engine = bed.fleet.docker.engine('host1');
    const before = (await engine.listContainers({ all: true })).map((c) => c.Id).sort();
    for (const name of ['web; touch /tmp/pwned', 'web$(touch /tmp/pwned)', '`id`', '../web']) {
      const f = await thrown(
        acts.ensureContainer({ host: 'host1', spec: { name, image: BUSYBOX, labels: TEST_LABELS } }),
      );
      expect(f.type).toBe('InvalidInput');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(/spec\.name: container name must be/);
    }
    expect((await engine.listContainers({ all: true })).map((c) => c.Id).sort()).toEqual(before);
    expect((await bed.fleet.pool.exec('host1', ['test', '-e', '/tmp/pwned'], { check: false })).code).toBe(1);
  });
});

describe('networks and volumes', () => {
  test('ensure twice gives one network and one volume; removing them is refused while in use, then works twice', async () => {
    const net = n('net');
    const vol = n('vol');
    const a = await ensureNetwork(bed.fleet, 'host2', { name: net, labels: TEST_LABELS });
    expect(a.action).toBe('created');
    expect(await ensureNetwork(bed.fleet, 'host2', { name: net, labels: TEST_LABELS })).toEqual({
      id: a.id,
      action: 'unchanged',
    });
    expect(await ensureVolume(bed.fleet, 'host2', { name: vol, labels: TEST_LABELS })).toEqual({
      name: vol,
      action: 'created',
    });
    expect((await ensureVolume(bed.fleet, 'host2', { name: vol, labels: TEST_LABELS })).action).toBe(
      'unchanged',
    );
    const engine = bed.fleet.docker.engine('host2');
    expect(
      (await engine.listNetworks({ filters: { name: [net] } })).filter((x) => x.Name === net),
    ).toHaveLength(1);

    const name = n('attached');
    await ensureContainer(
      bed.fleet,
      'host2',
      spec({ name, network: net, mounts: [{ type: 'volume', source: vol, target: '/data' }] }),
    );
    const info = await inspect('host2', name);
    expect(Object.keys(info?.NetworkSettings.Networks ?? {})).toEqual([net]);
    expect(info?.Mounts.map((m) => m.Name)).toEqual([vol]);

    for (const f of [
      await thrown(removeNetwork(bed.fleet, 'host2', net)),
      await thrown(removeVolume(bed.fleet, 'host2', vol)),
    ]) {
      expect(f.type).toBe('DockerError');
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toMatch(/in use/);
    }

    await removeContainer(bed.fleet, 'host2', name);
    expect(await removeNetwork(bed.fleet, 'host2', net)).toEqual({ result: 'removed' });
    expect(await removeNetwork(bed.fleet, 'host2', net)).toEqual({ result: 'absent' });
    expect(await removeVolume(bed.fleet, 'host2', vol)).toEqual({ result: 'removed' });
    expect(await removeVolume(bed.fleet, 'host2', vol)).toEqual({ result: 'absent' });
    expect((await engine.listVolumes({ filters: { name: [vol] } })).Volumes ?? []).toEqual([]);
  });
});

describe('ensureImage', () => {
  test('an image missing on host2 is streamed from host1, verified by id, then left alone', async () => {
    // an image host2 has no layer of: busybox plus one file, committed on host1
    const ref = `local/qmtest-${run}:copy`;
    const [repo, tag] = ref.split(':') as [string, string];
    const marker = `copied-${run}`;
    const h1 = bed.fleet.docker.engine('host1');
    const builder = await h1.createContainer({
      Image: BUSYBOX,
      Cmd: ['sh', '-c', `echo ${marker} > /marker`],
      Labels: TEST_LABELS,
    });
    await builder.start();
    await builder.wait();
    imageTags.push({ host: 'host1', ref }, { host: 'host2', ref });
    await builder.commit({ repo, tag });
    const sourceId = (await h1.getImage(ref).inspect()).Id;
    expect(await inspectImage('host2', ref)).toBeUndefined();

    const copied = await ensureImage(bed.fleet, 'host2', ref, { sourceHost: 'host1' });
    expect(copied).toMatchObject({ id: sourceId, action: 'copied', from: 'host1' });
    expect(copied.bytes).toBeGreaterThan(100_000);
    expect((await inspectImage('host2', ref))?.Id).toBe(sourceId);
    expect(await ensureImage(bed.fleet, 'host2', ref)).toEqual({ id: sourceId, action: 'present' });

    // the copy is a working image: a container from it on host2 sees the file
    const probe = await bed.fleet.docker.engine('host2').createContainer({
      Image: ref,
      Cmd: ['cat', '/marker'],
      Labels: TEST_LABELS,
    });
    await probe.start();
    expect((await probe.wait()).StatusCode).toBe(0);
    const logs = (await probe.logs({ stdout: true })) as unknown as Buffer;
    expect(logs.toString('utf8')).toContain(marker);
  });

  test('without a sourceHost it finds one; an image nobody has is a Conflict', async () => {
    const ref = `local/qmtest-${run}:found`;
    imageTags.push({ host: 'host1', ref }, { host: 'host3', ref });
    await bed.fleet.docker
      .engine('host1')
      .getImage(BUSYBOX)
      .tag({ repo: `local/qmtest-${run}`, tag: 'found' });
    expect(await ensureImage(bed.fleet, 'host3', ref)).toMatchObject({ action: 'copied', from: 'host1' });

    const f = await thrown(ensureImage(bed.fleet, 'host2', `local/qmtest-${run}:nowhere`));
    expect(f.type).toBe('Conflict');
    expect(f.message).toMatch(/is on none of host2, host1, host3/);
  });

  const inspectImage = (host: string, ref: string) =>
    bed.fleet.docker
      .engine(host)
      .getImage(ref)
      .inspect()
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode === 404) return undefined;
        throw err;
      });
});

describe('waitHealthy', () => {
  test('an httpd with a healthcheck becomes healthy and serves a page on its published port', async () => {
    const name = n('health');
    await ensureContainer(
      bed.fleet,
      'host2',
      spec({
        name,
        ports: [{ containerPort: 80, hostPort: 18080, hostIp: '127.0.0.1' }],
        memoryMb: 64,
        healthcheck: { test: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/'], intervalMs: 500 },
      }),
    );
    const r = await waitHealthy(bed.fleet, 'host2', name, 30_000);
    expect(r.status).toBe('healthy');
    const info = await inspect('host2', name);
    expect(info?.State.Health?.Status).toBe('healthy');
    expect(info?.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info?.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    const page = await bed.fleet.pool.exec('host2', ['wget', '-qO-', 'http://127.0.0.1:18080/'], {
      timeoutMs: 10_000,
    });
    expect(page.stdout.trim()).toBe('ok');
    expect(await listContainers(bed.fleet, 'host2', { 'qm.test-run': run })).toEqual(
      expect.arrayContaining([expect.objectContaining({ name, state: 'running' })]),
    );
  });

  test('without a healthcheck, running is enough', async () => {
    const name = n('nohc');
    await ensureContainer(bed.fleet, 'host3', spec({ name }));
    expect((await waitHealthy(bed.fleet, 'host3', name, 10_000)).status).toBe('running');
  });

  test('a failing healthcheck times out as a retryable Unhealthy carrying the check output', async () => {
    const name = n('sick');
    await ensureContainer(
      bed.fleet,
      'host3',
      spec({
        name,
        healthcheck: {
          test: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:81/'],
          intervalMs: 300,
          retries: 1,
        },
      }),
    );
    const t0 = Date.now();
    const f = await thrown(waitHealthy(bed.fleet, 'host3', name, 2500));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2400);
    expect(f.type).toBe('Unhealthy');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(/not healthy after 2500 ms .*health unhealthy.*last check: exit 1/);
    const details = f.details?.[0] as { log: { exitCode: number; output: string }[] };
    expect(details.log.length).toBeGreaterThan(0);
    expect(details.log.at(-1)?.output).toMatch(/refused/i);
  });

  test('a container that exited for good fails at once', async () => {
    const name = n('exits');
    // a healthcheck that never passes: only the exit can end the wait before the timeout
    await ensureContainer(
      bed.fleet,
      'host3',
      spec({
        name,
        cmd: ['sh', '-c', 'sleep 1; exit 3'],
        restart: 'no',
        healthcheck: { test: ['false'], intervalMs: 500, timeoutMs: 500, retries: 100 },
      }),
    );
    const f = await thrown(waitHealthy(bed.fleet, 'host3', name, 120_000));
    expect(f.type).toBe('Unhealthy');
    // the exit is named (a timeout would say "not healthy after 120000 ms")
    expect(f.message).toMatch(/exited with code 3/);
  });
});

describe('through Temporal', () => {
  const runIt = (taskQueue: string, args: unknown[], maximumAttempts: number) =>
    bed.env.client.workflow.execute(runActivity, {
      taskQueue,
      workflowId: `docker-test-${run}-${Date.now()}`,
      args: [
        {
          activity: 'ensureContainer',
          args,
          options: {
            startToCloseTimeout: '30 seconds',
            retry: { maximumAttempts, initialInterval: '500 milliseconds', backoffCoefficient: 1 },
          },
        },
      ],
    });

  test('waitHealthy heartbeats: a 2 s heartbeat timeout does not cut a 5 s wait short', async () => {
    const name = n('hb');
    await ensureContainer(
      bed.fleet,
      'host2',
      spec({ name, healthcheck: { test: ['false'], intervalMs: 500, retries: 1 } }),
    );
    await withWorker(bed, async (taskQueue) => {
      const t0 = Date.now();
      const err = await bed.env.client.workflow
        .execute(runActivity, {
          taskQueue,
          workflowId: `docker-test-${run}-hb`,
          args: [
            {
              activity: 'waitHealthy',
              args: [{ host: 'host2', name, timeoutMs: 5000 }],
              options: {
                startToCloseTimeout: '30 seconds',
                heartbeatTimeout: '2 seconds',
                retry: { maximumAttempts: 1 },
              },
            },
          ],
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
      const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure); // not a heartbeat TimeoutFailure
      expect((cause as ApplicationFailure).type).toBe('Unhealthy');
    });
  });

  test('with the Docker engine of host3 stopped: a retryable HostUnreachable naming the engine, then success once it is back', async () => {
    const name = n('engine');
    const input = { host: 'host3', spec: { name, image: BUSYBOX, cmd: HTTPD, labels: TEST_LABELS } };
    testbed.stop('host3', 'docker');
    try {
      await withWorker(bed, async (taskQueue) => {
        const err = await runIt(taskQueue, [input], 1).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const activity = (err as WorkflowFailedError).cause;
        expect(activity).toBeInstanceOf(ActivityFailure);
        const cause = (activity as ActivityFailure).cause as ApplicationFailure;
        expect(cause.type).toBe('HostUnreachable');
        expect(cause.nonRetryable).toBe(false);
        expect(cause.message).toMatch(/Docker engine of host3 does not accept connections/);

        // the same activity with retries outlives the outage: the engine comes back during it
        const pending = runIt(taskQueue, [input], 60);
        await new Promise((r) => setTimeout(r, 2000));
        testbed.start('host3', 'docker');
        expect(await pending).toMatchObject({ action: 'created' });
      });
    } finally {
      testbed.start('host3', 'docker'); // a no-op when it runs
    }
    expect((await inspect('host3', name))?.State.Running).toBe(true);
  });
});
