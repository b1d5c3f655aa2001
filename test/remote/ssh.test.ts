import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, type RetryPolicy } from '@temporalio/common';
import { utils } from 'ssh2';
import { createActivities, type Activities } from '../../activities';
import { relay } from '../../activities/backup/relay';
import { activityIO } from '../../activities/context';
import { FailureType } from '../../activities/errors';
import { openFleet, type Fleet } from '../../activities/fleet';
import { SshPool, type SshPoolOptions } from '../../activities/ssh/pool';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { withWorker } from '../support/temporal';
import { CLIENT_KEY, INVENTORY, TESTBED_DIR, testbed } from '../../dev/fleet';
import { runActivity } from '../workflows/runActivity';

/**
 * The SSH core on the real bed, under failure: sshd killed mid-command, a changed host key, a
 * refused key, a cut network, hostile arguments, big streams, timeouts and cancellation (through
 * Temporal too), the per-host channel bound and keepalive. Every test leaves every daemon running
 * and the network healed, whatever its assertions do.
 */
let bed: Bed;
const pools: SshPool[] = [];
const id = randomUUID().slice(0, 8);

beforeAll(async () => {
  bed = await openBed();
});
afterAll(async () => {
  for (const p of pools) await p.close();
  await bed?.close();
});

/** A pool of our own over the bed's hosts, with options a test needs (short timeouts, a small bound). */
function pool(opts: Omit<SshPoolOptions, 'privateKey' | 'agent'> = {}, hosts = bed.fleet.hosts): SshPool {
  const p = new SshPool(hosts, { privateKey: fs.readFileSync(CLIENT_KEY), ...opts });
  pools.push(p);
  return p;
}

/** A `sleep` whose command line no other process on this machine has, so that it can be found. */
function uniqueSleep(): string {
  return `${4000 + Math.floor(Math.random() * 5000)}.${Math.floor(Math.random() * 1e6)}`;
}

/** PIDs on the machine whose whole command line is `cmdline` (the bed's hosts share one PID namespace). */
function processes(host: string, cmdline: string): number[] {
  const out = testbed.exec(host, ['sh', '-c', 'pgrep -x -f "$1" || true', 'sh', cmdline]);
  return out.split('\n').filter(Boolean).map(Number);
}

/** PIDs running exactly `sleep SECONDS`. */
const sleepers = (host: string, seconds: string) => processes(host, `sleep ${seconds}`);

/** Until exactly one `sleep SECONDS` runs on the host. */
const sleepStarted = (host: string, seconds: string) =>
  eventually(() => sleepers(host, seconds).length === 1, {
    what: `the remote sleep ${seconds} on ${host}`,
    timeoutMs: 10_000,
    intervalMs: 50,
  });

/** Kill leftover sleeps of a test by PID (only ours: their command line is unique). */
function killSleepers(host: string, seconds: string) {
  for (const pid of sleepers(host, seconds)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure))
    throw new Error(`expected an ApplicationFailure, got ${err === undefined ? 'success' : String(err)}`);
  return err;
}

/** The client's source port of the SSH connection a command ran over: a new one means a reconnect. */
async function sourcePort(p: SshPool, host: string): Promise<string> {
  const r = await p.exec(host, ['sh', '-c', 'echo "$SSH_CLIENT"']);
  return r.stdout.trim().split(' ')[1]!;
}

/**
 * Run one activity through real Temporal (test/workflows/runActivity) on a worker over `workerFleet`,
 * and read from the workflow's history how many attempts it took and how the last one failed.
 */
async function throughTemporal(
  workerFleet: Fleet,
  input: Parameters<typeof runActivity>[0],
  overrides: Partial<Activities> = {},
  during?: (handle: { cancel(): Promise<unknown> }) => Promise<void>,
) {
  return withWorker(
    { env: bed.env, fleet: workerFleet },
    async (taskQueue) => {
      const handle = await bed.env.client.workflow.start(runActivity, {
        taskQueue,
        workflowId: `ssh-test-${id}-${randomUUID().slice(0, 8)}`,
        args: [input],
      });
      if (during) await during(handle);
      const outcome = await handle.result().then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: undefined, error }),
      );
      const events = (await handle.fetchHistory()).events ?? [];
      const started = events.filter((e) => e.activityTaskStartedEventAttributes);
      const last = started[started.length - 1]?.activityTaskStartedEventAttributes;
      return {
        ...outcome,
        attempts: last?.attempt ?? 0,
        lastFailureType: last?.lastFailure?.applicationFailureInfo?.type ?? undefined,
        cancelled: events.some((e) => e.activityTaskCanceledEventAttributes),
      };
    },
    { overrides },
  );
}

/** The ApplicationFailure an activity failed the workflow with. */
function activityCause(err: unknown): ApplicationFailure {
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const activity = (err as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const app = (activity as ActivityFailure).cause;
  expect(app).toBeInstanceOf(ApplicationFailure);
  return app as ApplicationFailure;
}

const RETRY: RetryPolicy = { initialInterval: '300ms', backoffCoefficient: 1, maximumAttempts: 5 };

describe('sshd restarted mid-command', () => {
  test('the command fails as retryable HostUnreachable and the pool reconnects by itself', async () => {
    const host = 'host2';
    const secs = uniqueSleep();
    try {
      const before = await sourcePort(bed.fleet.pool, host);
      const running = failureOf(bed.fleet.pool.exec(host, ['sleep', secs]));
      await sleepStarted(host, secs);
      testbed.stop(host, 'sshd');
      const err = await running;
      expect([err.type, err.nonRetryable]).toEqual([FailureType.HostUnreachable, false]);
      expect(err.message).toMatch(/host2/);
      testbed.start(host, 'sshd');
      // no drop(), no new pool: the next call makes a new connection
      expect((await bed.fleet.pool.exec(host, ['hostname'])).stdout.trim()).toBe(host);
      expect(await sourcePort(bed.fleet.pool, host)).not.toBe(before);
    } finally {
      testbed.start(host, 'sshd');
      killSleepers(host, secs);
    }
  });

  test("through Temporal: the activity's first attempt fails, its retry succeeds", async () => {
    const host = 'host2';
    const real = createActivities(bed.fleet).checkHost;
    let calls = 0;
    let firstStarted!: () => void;
    const started = new Promise<void>((r) => (firstStarted = r));
    try {
      // checkHost behind a command long enough to be cut: what any long activity step looks like
      const slowCheckHost = async (h: string) => {
        if (++calls === 1) firstStarted();
        await bed.fleet.pool.exec(h, ['sleep', '1.5'], activityIO());
        return real(h);
      };
      const out = await throughTemporal(
        bed.fleet,
        { activity: 'checkHost', args: [host], options: { retry: RETRY } },
        { checkHost: slowCheckHost },
        async () => {
          await started;
          await new Promise((r) => setTimeout(r, 300));
          testbed.stop(host, 'sshd');
          testbed.start(host, 'sshd');
        },
      );
      expect(out.error).toBeUndefined();
      expect(out.result).toEqual(expect.objectContaining({ host, hostname: host }));
      expect(out.attempts).toBe(2);
      expect(out.lastFailureType).toBe(FailureType.HostUnreachable);
    } finally {
      testbed.start(host, 'sshd');
    }
  });
});

describe('refused connections are not retried', () => {
  test('a changed host key: HostKeyMismatch naming the key presented, one attempt only', async () => {
    const host = 'host3';
    const fresh = pool();
    try {
      testbed.rekey(host);
      const presented = fs
        .readFileSync(path.join(TESTBED_DIR, 'hosts', 'h3', 'etc', 'ssh_host_ed25519_key.pub'), 'utf8')
        .split(' ')[1]!;
      const err = await failureOf(fresh.exec(host, ['true']));
      expect([err.type, err.nonRetryable]).toEqual([FailureType.HostKeyMismatch, true]);
      expect(err.message).toContain(
        'SHA256:' +
          createHash('sha256').update(Buffer.from(presented, 'base64')).digest('base64').replace(/=+$/, ''),
      );

      // the running fleet's connection was cut by the sshd restart: its reconnect is refused too
      const out = await throughTemporal(bed.fleet, {
        activity: 'checkHost',
        args: [host],
        options: { retry: RETRY },
      });
      const cause = activityCause(out.error);
      expect([cause.type, cause.nonRetryable]).toEqual([FailureType.HostKeyMismatch, true]);
      expect(out.attempts).toBe(1);
    } finally {
      testbed.restoreKey(host);
    }
    // the original key is back and accepted again, by the same pools
    expect((await fresh.exec(host, ['hostname'])).stdout.trim()).toBe(host);
    expect((await bed.fleet.pool.exec(host, ['hostname'])).stdout.trim()).toBe(host);
  });

  test('a key the hosts do not know: AuthFailed, one attempt only', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-wrong-key-'));
    const wrongKey = path.join(dir, 'id_ed25519');
    fs.writeFileSync(wrongKey, utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
    const wrongFleet = openFleet({ inventoryPath: INVENTORY, privateKeyPath: wrongKey });
    try {
      const err = await failureOf(wrongFleet.pool.exec('host1', ['true']));
      expect([err.type, err.nonRetryable]).toEqual([FailureType.AuthFailed, true]);
      const out = await throughTemporal(wrongFleet, {
        activity: 'checkHost',
        args: ['host1'],
        options: { retry: RETRY },
      });
      const cause = activityCause(out.error);
      expect([cause.type, cause.nonRetryable]).toEqual([FailureType.AuthFailed, true]);
      expect(out.attempts).toBe(1);
    } finally {
      await wrongFleet.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a user the host does not have: AuthFailed', async () => {
    const hosts = bed.fleet.hosts.map((h) => ({ ...h, user: 'qmnosuchuser' }));
    const err = await failureOf(pool({}, hosts).exec('host1', ['true']));
    expect([err.type, err.nonRetryable]).toEqual([FailureType.AuthFailed, true]);
    expect(err.message).toContain('qmnosuchuser');
  });

  test('bad input is InvalidInput, before any connection: an unknown host, a NUL, an empty command', async () => {
    for (const [host, argv] of [
      ['host9', ['true']],
      ['host1', ['echo', 'a\0b']],
      ['host1', []],
    ] as const) {
      const err = await failureOf(bed.fleet.pool.exec(host, argv));
      expect([err.type, err.nonRetryable]).toEqual([FailureType.InvalidInput, true]);
    }
  });
});

describe('a cut network', () => {
  test('HostUnreachable within the connect timeout; after heal the host answers', async () => {
    const host = 'host3';
    const p = pool({ connectTimeoutMs: 1500 });
    try {
      testbed.cut(host);
      const t0 = Date.now();
      const err = await failureOf(p.exec(host, ['true']));
      const took = Date.now() - t0;
      expect([err.type, err.nonRetryable]).toEqual([FailureType.HostUnreachable, false]);
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(3000);
    } finally {
      testbed.heal(host);
    }
    expect((await p.exec(host, ['hostname'])).stdout.trim()).toBe(host);
  });

  test('keepalive finds a connection that died while idle: the next call reconnects after heal', async () => {
    const host = 'host3';
    const p = pool({ connectTimeoutMs: 1500, keepaliveIntervalMs: 300, keepaliveCountMax: 2 });
    const before = await sourcePort(p, host);
    try {
      testbed.cut(host);
      await new Promise((r) => setTimeout(r, 2000)); // idle, while keepalive gives up on the peer
      // the dead connection is known dead: a call makes a new one (and fails fast), it does not hang on the old
      const t0 = Date.now();
      const err = await failureOf(p.exec(host, ['true']));
      expect(err.type).toBe(FailureType.HostUnreachable);
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      testbed.heal(host);
    }
    expect(await sourcePort(p, host)).not.toBe(before);
  });

  test('a command running when the network goes is failed by keepalive, not left hanging', async () => {
    const host = 'host3';
    const secs = uniqueSleep();
    const p = pool({ keepaliveIntervalMs: 300, keepaliveCountMax: 2 });
    await p.exec(host, ['true']);
    try {
      const running = failureOf(p.exec(host, ['sleep', secs]));
      await sleepStarted(host, secs);
      const t0 = Date.now();
      testbed.cut(host);
      const err = await running;
      expect(err.type).toBe(FailureType.HostUnreachable);
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      testbed.heal(host);
      killSleepers(host, secs);
    }
  });
});

describe('arguments cannot inject', () => {
  const marker = `qm-injected-${id}`;
  // relative paths land in the login's working directory ($HOME); absolute ones in /srv
  const hostile =
    `x'; touch ${marker}; echo '$(touch ${marker})\`touch ${marker}\`"; touch ${marker}; "\n` +
    `touch /srv/${marker} && touch ${marker} | touch ${marker} > ${marker} & ${marker} $HOME * ~ ✓`;

  test('a name full of shell metacharacters arrives as one argument and runs nothing', async () => {
    const host = 'host1';
    // a file name of its own (a name component is at most 255 bytes): the same tricks, shorter
    const file = `/srv/qm-name-${id}-$(touch ${marker});\`touch ${marker}\`'"\n* ~ ✓ && touch ${marker}`;
    try {
      expect((await bed.fleet.pool.exec(host, ['printf', '%s', hostile])).stdout).toBe(hostile);
      await bed.fleet.pool.exec(host, ['touch', '--', file]);
      const found = await bed.fleet.pool.exec(host, [
        'find',
        '/srv',
        '-maxdepth',
        '1',
        '-name',
        `qm-name-${id}-*`,
        '-print0',
      ]);
      expect(found.stdout).toBe(`${file}\0`);
      for (const m of [`/root/${marker}`, `/srv/${marker}`]) {
        expect((await bed.fleet.pool.exec(host, ['test', '-e', m], { check: false })).code).toBe(1);
        expect(() => testbed.exec(host, ['test', '-e', m])).toThrow();
      }
    } finally {
      await bed.fleet.pool.exec(host, ['rm', '-f', '--', file, `/root/${marker}`, `/srv/${marker}`], {
        check: false,
      });
    }
  });
});

describe('streams', () => {
  test('a few MB of stdin arrive intact', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 7);
    const chunks = Array.from({ length: 81 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const r = await bed.fleet.pool.exec('host2', ['sha256sum'], { stdin: Readable.from(chunks) });
    expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
  });

  test('stdin in, stdout out through a Writable, stderr captured and streamed, exit code returned', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const received: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        received.push(chunk);
        setImmediate(done); // a consumer slower than the network: backpressure
      },
    });
    const errText: string[] = [];
    const errSink = new Writable({
      write(chunk: Buffer, _enc, done) {
        errText.push(chunk.toString());
        done();
      },
    });
    const r = await bed.fleet.pool.exec(
      'host2',
      ['sh', '-c', 'cat; echo "done: $1" >&2; exit 3', 'sh', 'ünï'],
      {
        stdin: data,
        stdout: sink,
        stderr: errSink,
        check: false,
      },
    );
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(Buffer.concat(received).equals(data)).toBe(true);
    expect(r.stderr).toBe('done: ünï\n');
    expect(errText.join('')).toBe('done: ünï\n');
  });

  test('a stdin stream that fails stops the command: CommandFailed, the worker does not crash', async () => {
    const host = 'host2';
    const secs = uniqueSleep();
    try {
      const stdin = new Readable({ read() {} });
      stdin.push(randomBytes(100_000));
      const running = failureOf(
        bed.fleet.pool.exec(host, ['sh', '-c', 'cat >/dev/null; sleep "$1"', 'sh', secs], { stdin }),
      );
      await new Promise((r) => setTimeout(r, 300));
      stdin.destroy(new Error('the dump file went away'));
      const err = await running;
      expect(err.type).toBe(FailureType.CommandFailed);
      expect(err.message).toContain('the dump file went away');
      expect(sleepers(host, secs)).toEqual([]);
    } finally {
      killSleepers(host, secs);
    }
  });

  test('a stdout sink that fails stops the command instead of leaving it blocked', async () => {
    const host = 'host2';
    const word = `qm-yes-${id}`;
    try {
      let seen = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          done(seen > 1_000_000 ? new Error('disk full') : undefined);
        },
      });
      const err = await failureOf(bed.fleet.pool.exec(host, ['yes', word], { stdout: sink }));
      expect(err.type).toBe(FailureType.CommandFailed);
      expect(err.message).toContain('disk full');
      expect(processes(host, `yes ${word}`)).toEqual([]);
    } finally {
      for (const pid of processes(host, `yes ${word}`)) process.kill(pid, 'SIGKILL');
    }
  });

  test('a relay whose sink fails while the source still streams stops the source and reports the sink', async () => {
    // what verification sees when the DB host's MariaDB dies under a load: the sink exits, the
    // source has megabytes still to send (this hung, heartbeating, before the relay destroyed its meter)
    const word = `qm-relay-${id}`;
    try {
      const err = await failureOf(
        relay(
          bed.fleet.pool,
          { host: 'host1', argv: ['yes', word] },
          {
            host: 'host2',
            argv: ['sh', '-c', 'head -c 5000000 >/dev/null; echo "sink gives up" >&2; exit 1'],
          },
          { timeoutMs: 60_000 },
        ),
      );
      expect(err.type).toBe(FailureType.CommandFailed);
      expect(err.message).toBe('host2: sh exited 1: sink gives up');
      expect(processes('host1', `yes ${word}`)).toEqual([]);
    } finally {
      for (const pid of processes('host1', `yes ${word}`)) process.kill(pid, 'SIGKILL');
    }
  }, 30_000);

  test('a non-zero exit is CommandFailed (retryable) with the last line of stderr', async () => {
    const err = await failureOf(bed.fleet.pool.exec('host1', ['ls', `/nonexistent-${id}`]));
    expect([err.type, err.nonRetryable]).toEqual([FailureType.CommandFailed, false]);
    expect(err.message).toMatch(/exited 2: .*No such file or directory/);
  });

  test('captured multi-byte text split across packets is decoded intact', async () => {
    const line = 'héllo wörld 🙂 日本';
    const r = await bed.fleet.pool.exec('host1', ['sh', '-c', 'yes "$1" | head -n 100000', 'sh', line]);
    expect(r.stdout.length).toBe((line.length + 1) * 100000);
    expect(r.stdout).toBe(`${line}\n`.repeat(100000));
  });
});

describe('timeout and cancellation stop the remote process', () => {
  test('a timeout stops the command and its children: CommandTimeout, nothing left on the host', async () => {
    const host = 'host1';
    const secs = uniqueSleep();
    try {
      const t0 = Date.now();
      const err = await failureOf(
        bed.fleet.pool.exec(host, ['sh', '-c', 'sleep "$1" & sleep "$1"; wait', 'sh', secs], {
          timeoutMs: 800,
        }),
      );
      expect([err.type, err.nonRetryable]).toEqual([FailureType.CommandTimeout, false]);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(sleepers(host, secs)).toEqual([]);
    } finally {
      killSleepers(host, secs);
    }
  });

  test('an aborted signal stops the command: nothing left on the host', async () => {
    const host = 'host1';
    const secs = uniqueSleep();
    const ac = new AbortController();
    try {
      const running = bed.fleet.pool.exec(host, ['sleep', secs], { signal: ac.signal });
      await sleepStarted(host, secs);
      ac.abort(new Error('stop it'));
      await expect(running).rejects.toThrow('stop it');
      expect(sleepers(host, secs)).toEqual([]);
    } finally {
      killSleepers(host, secs);
    }
  });

  test('a login shell that prints on stderr first does not hide the process group', async () => {
    const host = 'host3';
    const secs = uniqueSleep();
    const rc = path.join(TESTBED_DIR, 'hosts', 'h3', 'root', '.bashrc'); // host3's /root/.bashrc
    fs.writeFileSync(rc, 'echo "Welcome to host3" >&2\necho "qm-pgid not-a-number" >&2\n');
    try {
      const r = await bed.fleet.pool.exec(host, ['sh', '-c', 'echo from-the-command >&2']);
      expect(r.stderr).toBe('Welcome to host3\nqm-pgid not-a-number\nfrom-the-command\n');
      const err = await failureOf(bed.fleet.pool.exec(host, ['sleep', secs], { timeoutMs: 800 }));
      expect(err.type).toBe(FailureType.CommandTimeout);
      expect(sleepers(host, secs)).toEqual([]);
    } finally {
      fs.rmSync(rc, { force: true });
      killSleepers(host, secs);
    }
  });

  test('through Temporal: cancelling the workflow stops a quiet long command (it heartbeats)', async () => {
    const host = 'host2';
    const secs = uniqueSleep();
    try {
      const out = await throughTemporal(
        bed.fleet,
        {
          activity: 'checkHost',
          args: [host],
          options: {
            heartbeatTimeout: '3s',
            cancellationType: 'WAIT_CANCELLATION_COMPLETED',
            retry: { maximumAttempts: 1 },
          },
        },
        {
          // a long step that prints nothing: only exec's own heartbeat keeps it alive and cancellable
          checkHost: async (h: string) => {
            await bed.fleet.pool.exec(h, ['sleep', secs], activityIO());
            throw new Error('the sleep was not cancelled');
          },
        },
        async (handle) => {
          await sleepStarted(host, secs);
          await new Promise((r) => setTimeout(r, 4000)); // past the heartbeat timeout: it heartbeats
          await handle.cancel();
        },
      );
      expect(out.error).toBeInstanceOf(WorkflowFailedError);
      expect((out.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect(out.cancelled).toBe(true);
      // the activity completed its cancellation only once the remote command was gone
      expect(sleepers(host, secs)).toEqual([]);
    } finally {
      killSleepers(host, secs);
    }
  });
});

describe('the per-host channel bound', () => {
  // each run notes when it started and ended on the host (ns), in a directory of its own
  const SPAN = 's=$(date +%s%N); sleep 0.3; e=$(date +%s%N); echo "$s $e" > "$1/$$"';

  async function maxRunningAtOnce(maxChannelsPerHost: number): Promise<{ runs: number; max: number }> {
    const host = 'host1';
    const dir = `/srv/qm-bound-${id}-${maxChannelsPerHost}`;
    const p = pool({ maxChannelsPerHost });
    await p.exec(host, ['mkdir', '-p', dir]);
    try {
      await Promise.all(Array.from({ length: 20 }, () => p.exec(host, ['sh', '-c', SPAN, 'sh', dir])));
      const spans = (await p.exec(host, ['sh', '-c', 'cat "$1"/*', 'sh', dir])).stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ').map(BigInt) as [bigint, bigint]);
      const events = spans.flatMap(([s, e]) => [
        [s, 1],
        [e, -1],
      ]) as [bigint, number][];
      events.sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : a[0] < b[0] ? -1 : 1));
      let now = 0;
      let max = 0;
      for (const [, d] of events) max = Math.max(max, (now += d));
      return { runs: spans.length, max };
    } finally {
      await p.exec(host, ['rm', '-rf', '--', dir]);
    }
  }

  test('20 parallel execs with maxChannelsPerHost 4 never run more than 4 at once on the host', async () => {
    expect(await maxRunningAtOnce(4)).toEqual({ runs: 20, max: 4 });
  });

  test('(the measure can see a breach: with a bound of 20, more than 4 run at once)', async () => {
    const { runs, max } = await maxRunningAtOnce(20);
    expect(runs).toBe(20);
    expect(max).toBeGreaterThan(4);
  });
});
