import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { fingerprint } from '../activities/ssh/pool';
import { ensureImage } from '../activities/docker/image';
import { CLIENT_KEY } from '../dev/fleet';
import { benchFleet, median, peakRss, percentile, report, round, sample, timeIt } from './lib';

/**
 * Docker API latency through the pooled SSH connection (one handshake per host, a streamlocal
 * channel per call) against dockerode's own `protocol: 'ssh'` transport (a new SSH connection and
 * a `docker system dial-stdio` per call), on the same host in the same run: ping, list, inspect,
 * and a create/start/stop/remove cycle. Then, through the pool only: 32 inspects at once, and an
 * image copy between hosts (throughput, and peak RSS to show the archive is streamed, not held).
 *
 *   npm run bench -- docker [host] [--copy-mb N]
 */
const args = process.argv.slice(2);
const host = args.find((a) => /^host\d+$/.test(a)) ?? 'host2';
const copyMb = Number(args[args.indexOf('--copy-mb') + 1] ?? 0) || 128;
const BUSYBOX = 'local/busybox:1';
const LABELS = { 'qm.bench': '1' };
const run = randomBytes(3).toString('hex');
const STEPS = ['ping', 'list', 'inspect', 'create', 'start', 'stop', 'remove'] as const;
type Step = (typeof STEPS)[number];
const empty = () => Object.fromEntries(STEPS.map((s) => [s, []])) as unknown as Record<Step, number[]>;
// dockerode's ssh transport builds a URL Node warns about on every call: keep the output readable
process.noDeprecation = true;

async function main() {
  const fleet = benchFleet();
  const inv = fleet.pool.host(host);
  const pooled = fleet.docker.engine(host);
  // dockerode's built-in transport, with the same key and the same host-key pin as the pool
  const viaSsh = new Docker({
    protocol: 'ssh',
    host: inv.address,
    port: inv.port,
    username: inv.user,
    sshOptions: {
      privateKey: fs.readFileSync(CLIENT_KEY),
      hostVerifier: (key: Buffer) => inv.hostKeys.includes(fingerprint(key)),
    },
  } as Docker.DockerOptions);

  const probe = await pooled.createContainer({
    name: `qmbench-${run}-probe`,
    Image: BUSYBOX,
    Cmd: ['sleep', '3600'],
    Labels: LABELS,
    HostConfig: { Init: true },
  });
  await probe.start();
  let cycleNo = 0;
  /** One create/start/stop/remove cycle, each call timed on its own. */
  const cycle = async (engine: Docker, into: Record<Step, number[]>) => {
    let c!: Docker.Container;
    into.create.push(
      await timeIt(
        async () =>
          (c = await engine.createContainer({
            name: `qmbench-${run}-cycle-${cycleNo++}`,
            Image: BUSYBOX,
            Cmd: ['sleep', '3600'],
            Labels: LABELS,
            HostConfig: { Init: true },
          })),
      ),
    );
    into.start.push(await timeIt(() => c.start()));
    into.stop.push(await timeIt(() => c.stop({ t: 5 })));
    into.remove.push(await timeIt(() => c.remove()));
  };

  const measure = async (engine: Docker, n: number, cycles: number) => {
    const out: Record<Step, number[]> = {
      ping: await sample(n, () => engine.ping()),
      list: await sample(n, () => engine.listContainers({ all: true })),
      inspect: await sample(n, () => engine.getContainer(probe.id).inspect()),
      create: [],
      start: [],
      stop: [],
      remove: [],
    };
    await cycle(engine, empty()); // warm-up
    for (let i = 0; i < cycles; i++) await cycle(engine, out);
    return out;
  };

  try {
    console.log(`Docker API on ${host} (${inv.address}), medians in ms (p90 in brackets)\n`);
    const pool = await measure(pooled, 60, 15);
    const ssh = await measure(viaSsh, 15, 4);
    const ops = STEPS;
    const figures: Record<string, unknown> = {};
    console.log('operation            pool      dockerode ssh   ratio');
    for (const op of ops) {
      const p = median(pool[op]);
      const s = median(ssh[op]);
      figures[op] = {
        poolMs: round(p),
        sshMs: round(s),
        ratio: round(s / p, 1),
        poolP90Ms: round(percentile(pool[op], 90)),
      };
      console.log(
        `${`${op}`.padEnd(20)} ${round(p).toFixed(2).padStart(6)} [${round(percentile(pool[op], 90)).toFixed(1)}]` +
          `  ${round(s).toFixed(1).padStart(7)} [${round(percentile(ssh[op], 90)).toFixed(1)}]   x${round(s / p, 1)}`,
      );
    }
    // transport-bound calls (the engine does little): what the pool is for
    const perCall = median([...pool.ping, ...pool.list, ...pool.inspect]);
    console.log(
      `\nmedian per call through the pool (ping/list/inspect): ${round(perCall)} ms (target <= 30 ms); ` +
        `create/start/stop/remove time is mostly the engine's own work, the same on both transports`,
    );

    // 32 inspects at once: the pool bounds open channels per host (8 by default) and queues the rest
    const parallel = await sample(5, () =>
      Promise.all(Array.from({ length: 32 }, () => pooled.getContainer(probe.id).inspect())),
    );
    console.log(`32 inspects at once through the pool: ${round(median(parallel))} ms`);

    // an image copy: a ~copyMb MB layer committed on host1, streamed into the other host's engine
    const copy = await imageCopy(fleet, host === 'host1' ? 'host2' : host, copyMb);
    console.log(
      `image copy host1 -> ${copy.to}: ${copy.mb} MB archive in ${copy.seconds} s (${copy.mbPerS} MB/s), ` +
        `peak RSS ${copy.peakRssMb} MB (${copy.rssGrowthMb} MB above the start)`,
    );

    report('docker', {
      host,
      ...figures,
      poolMedianPerCallMs: round(perCall),
      targetMs: 30,
      parallel32InspectMs: round(median(parallel)),
      imageCopy: copy,
      rssMb: round(process.memoryUsage().rss / 2 ** 20, 1),
    });
  } finally {
    const filters = JSON.stringify({ label: ['qm.bench=1'] });
    for (const c of await pooled.listContainers({ all: true, filters }))
      await pooled.getContainer(c.Id).remove({ force: true });
    await fleet.close();
  }
}

async function imageCopy(fleet: ReturnType<typeof benchFleet>, to: string, mb: number) {
  const ref = `local/qmbench-${run}:big`;
  const h1 = fleet.docker.engine('host1');
  const target = fleet.docker.engine(to);
  const builder = await h1.createContainer({
    Image: BUSYBOX,
    Cmd: ['busybox', 'dd', 'if=/dev/urandom', 'of=/big', 'bs=1048576', `count=${mb}`],
    Labels: LABELS,
  });
  try {
    await builder.start();
    await builder.wait();
    await builder.commit({ repo: `local/qmbench-${run}`, tag: 'big' });
    global.gc?.();
    const rssBefore = process.memoryUsage().rss / 2 ** 20;
    let result: Awaited<ReturnType<typeof ensureImage>> | undefined;
    let seconds = 0;
    const { peakMb } = await peakRss(async () => {
      seconds =
        (await timeIt(async () => (result = await ensureImage(fleet, to, ref, { sourceHost: 'host1' })))) /
        1000;
    });
    if (result?.action !== 'copied') throw new Error(`expected a copy, got ${JSON.stringify(result)}`);
    const archiveMb = (result.bytes ?? 0) / 2 ** 20;
    return {
      to,
      mb: round(archiveMb, 1),
      seconds: round(seconds, 2),
      mbPerS: round(archiveMb / seconds, 1),
      peakRssMb: round(peakMb, 1),
      rssGrowthMb: round(peakMb - rssBefore, 1),
    };
  } finally {
    await builder.remove({ force: true }).catch(() => undefined);
    for (const engine of [h1, target])
      await engine
        .getImage(ref)
        .remove()
        .catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
