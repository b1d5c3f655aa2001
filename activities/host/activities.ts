import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { hostName } from '../../schema/common';
import { DomainName, HealthExpectation } from '../../schema/route';
import { activityIO, withHeartbeat } from '../context';
import { abortable, callOptions, dockerOp } from '../docker/failures';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { hostWithRole, parseInput } from '../input';
import { judgeProbe } from '../site/health';
import { LABELS } from '../site/render';
import {
  BOOT_ID_ARGV,
  parsePatchOutput,
  patchArgv,
  readIfExistsArgv,
  rebootMarkerPath,
  ROLL_ID,
  scheduleRebootArgv,
  writeAtomicArgv,
} from './commands';
import { DEFAULT_PATCH_COMMAND, PATCH_FAILED } from '../../protocol/patchRoll';
import { probeBackend } from './probeBackend';
import { isTestbedHost, rebootTestbedHost } from './reboot';

/**
 * The per-host steps of a patch roll (workflows/patchRoll/): what runs on the host being
 * patched, each one plain JSON in, checked at the edge, and safe to run again (said on each).
 */

const Argv = z.array(z.string().max(4096)).min(1).max(256);
const RollId = z.string().regex(ROLL_ID, 'rollId must be letters, digits and hyphens (8-64)');
const OnHost = z.strictObject({ host: hostName });
const RunPatchInput = z.strictObject({
  host: hostName,
  rollId: RollId,
  /** Unset: the host's patchCommand from the inventory, else DEFAULT_PATCH_COMMAND. */
  command: Argv.optional(),
  timeoutSeconds: z
    .number()
    .int()
    .min(10)
    .max(6 * 3600),
  /** Run after the patch (even one already done): exit 0 means the host wants a reboot. */
  rebootCheck: Argv.optional(),
});
const RebootCheckInput = z.strictObject({ host: hostName, command: Argv });
const RebootInput = z.strictObject({ host: hostName, rollId: RollId });
const WaitInput = z.strictObject({
  host: hostName,
  /** The boot id before the reboot: the host is back once it answers with another one. */
  bootIdBefore: z.string().max(64).optional(),
  timeoutSeconds: z.number().int().min(5).max(3600),
});
const ProbeBackendInput = z.strictObject({
  proxyHost: hostName,
  backendHost: hostName,
  port: z.number().int().min(1).max(65535),
  domain: DomainName,
  ...HealthExpectation,
  timeoutMs: z.number().int().min(100).max(60_000).default(5000),
});

export interface SiteContainersOnHost {
  siteId: string;
  /** Its containers' qm.role labels (app, cache, cron). */
  roles: string[];
  containers: { name: string; state: string }[];
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason ?? new Error('cancelled'));
      },
      { once: true },
    );
  });

export function makeHostActivities(fleet: Fleet) {
  const pool = fleet.pool;

  async function bootId(host: string, timeoutMs = 15_000): Promise<string> {
    const r = await pool.exec(host, BOOT_ID_ARGV, { ...activityIO(), timeoutMs });
    return r.stdout.trim();
  }

  return {
    /**
     * The sites that have containers on the host, found by their qm.site label (the ground truth
     * of what runs there, whatever the records say), with each container's role and state.
     * Read-only.
     */
    async hostSites(input: z.input<typeof OnHost>): Promise<SiteContainersOnHost[]> {
      const { host } = parseInput(OnHost, input, 'hostSites');
      pool.host(host);
      const { signal } = activityIO();
      const engine = fleet.docker.engine(host);
      const list = await dockerOp(host, 'list containers', signal, () =>
        engine.listContainers({
          all: true,
          filters: JSON.stringify({ label: [LABELS.site] }),
          ...callOptions(signal),
        }),
      );
      const bySite = new Map<string, SiteContainersOnHost>();
      for (const c of list) {
        const siteId = c.Labels[LABELS.site]!;
        const s = bySite.get(siteId) ?? { siteId, roles: [], containers: [] };
        const role = c.Labels[LABELS.role];
        if (role && !s.roles.includes(role)) s.roles.push(role);
        s.containers.push({ name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State });
        bySite.set(siteId, s);
      }
      return [...bySite.values()]
        .map((s) => ({
          ...s,
          roles: s.roles.sort(),
          containers: s.containers.sort((a, b) => (a.name < b.name ? -1 : 1)),
        }))
        .sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
    },

    /**
     * Run the patch command on the host, once per roll: under the guard of commands.ts (a lock
     * and a `done` marker in /srv/qm/patch-roll/<rollId>), so a retry (the worker died, the
     * result was lost) waits for an attempt still running and then finds `done` and runs nothing
     * (`already-done`). Only an attempt that died before the command finished runs it again,
     * which is what ops would do by hand: apt-get update/upgrade are idempotent and resume an
     * interrupted run (dpkg --configure -a aside, which apt tells you to run). A non-zero exit is
     * PatchFailed (not retried: the host needs a person), with the tail of its output; the whole
     * output stays on the host in output.log. The output is the patch tool's (apt's), not ours:
     * a command that prints secrets would put them in the tail. With `rebootCheck`, it also says
     * whether the host now wants a reboot (saving a round trip; the check is read-only). Without a
     * command in its input it runs the host's `patchCommand` from the inventory (the demo fleet's
     * is harmless: its hosts share the machine's root filesystem), else DEFAULT_PATCH_COMMAND; the
     * result names the command that ran.
     */
    async runPatch(input: z.input<typeof RunPatchInput>): Promise<{
      result: 'ran' | 'already-done';
      command: string[];
      seconds: number;
      outputTail: string;
      rebootRequired?: boolean;
    }> {
      const { host, rollId, timeoutSeconds, rebootCheck, ...given } = parseInput(
        RunPatchInput,
        input,
        'runPatch',
      );
      const command = given.command ?? pool.host(host).patchCommand ?? DEFAULT_PATCH_COMMAND;
      const t0 = Date.now();
      const r = await pool.exec(host, patchArgv(rollId, command), {
        ...activityIO(),
        timeoutMs: timeoutSeconds * 1000,
        check: false,
      });
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      const outcome = parsePatchOutput(r.stdout, r.code);
      const rebootRequired = async () =>
        rebootCheck
          ? (await pool.exec(host, rebootCheck, { ...activityIO(), timeoutMs: 60_000, check: false }))
              .code === 0
          : undefined;
      if (outcome.result === 'already-done')
        return {
          result: 'already-done',
          command,
          seconds,
          outputTail: '',
          rebootRequired: await rebootRequired(),
        };
      if (outcome.result === 'guard-failed')
        throw failure(
          FailureType.CommandFailed,
          `${host}: the patch guard failed (exit ${r.code}): ${r.stderr.trim().split('\n').pop() ?? ''}`,
          { host, exitCode: r.code },
        );
      const outputTail = outcome.tail.slice(-1000);
      if (outcome.exitCode !== 0)
        throw ApplicationFailure.create({
          type: PATCH_FAILED,
          message: `${host}: the patch command exited ${outcome.exitCode}: ${outputTail.split('\n').slice(-3).join(' | ')}`,
          details: [{ host, exitCode: outcome.exitCode, outputTail }],
          nonRetryable: true,
        });
      return { result: 'ran', command, seconds, outputTail, rebootRequired: await rebootRequired() };
    },

    /** Whether the host wants a reboot: the check command exits 0 (default: /run/reboot-required exists). Read-only. */
    async rebootRequired(input: z.input<typeof RebootCheckInput>): Promise<{ required: boolean }> {
      const { host, command } = parseInput(RebootCheckInput, input, 'rebootRequired');
      pool.host(host);
      const r = await pool.exec(host, command, { ...activityIO(), timeoutMs: 60_000, check: false });
      return { required: r.code === 0 };
    },

    /**
     * Reboot the host, once per roll: a marker in the roll's directory records the boot id when
     * the reboot was asked for. A retry finds the marker: if the host has booted since (another
     * boot id), or the test-bed reboot is recorded done, it does nothing (`already-rebooted`);
     * otherwise it asks again, which systemd ignores if the reboot is still scheduled (same unit
     * name). On the test bed (see reboot.ts) the reboot runs to its end before this returns.
     */
    async rebootHost(input: z.input<typeof RebootInput>): Promise<{
      action: 'rebooted' | 'scheduled' | 'already-rebooted';
      bootIdBefore: string;
      method: string;
    }> {
      const { host, rollId } = parseInput(RebootInput, input, 'rebootHost');
      const h = pool.host(host);
      const io = activityIO();
      const marker = rebootMarkerPath(rollId);
      const [current, seen] = await Promise.all([
        bootId(host),
        pool.exec(host, readIfExistsArgv(marker), { ...io, timeoutMs: 15_000 }),
      ]);
      const [word, before] = seen.stdout.trim().split(' ');
      const testbed = isTestbedHost(h);
      const method = testbed ? 'testbed' : 'systemd';
      if (word === 'rebooted' || (word === 'requested' && before && before !== current))
        return { action: 'already-rebooted', bootIdBefore: before ?? current, method };
      await pool.exec(host, writeAtomicArgv(marker), {
        ...io,
        stdin: `requested ${current}\n`,
        timeoutMs: 15_000,
      });
      if (testbed) {
        await withHeartbeat(() => rebootTestbedHost(h, io.signal), 2000);
        pool.drop(host);
        await pool.exec(host, writeAtomicArgv(marker), { ...io, stdin: 'rebooted\n', timeoutMs: 30_000 });
        return { action: 'rebooted', bootIdBefore: current, method };
      }
      const r = await pool.exec(host, scheduleRebootArgv(rollId), { ...io, timeoutMs: 30_000, check: false });
      if (r.code !== 0 && !/already (exists|loaded)/i.test(r.stderr))
        throw failure(
          FailureType.CommandFailed,
          `${host}: could not schedule the reboot: ${r.stderr.trim()}`,
          {
            host,
          },
        );
      return { action: 'scheduled', bootIdBefore: current, method };
    },

    /**
     * Wait until the host is back: a fresh SSH connection answers (with a new boot id, when the
     * boot id before is given and the host is not a test-bed host, whose namespaces share the
     * machine's kernel) and its Docker engine answers. Tries with backoff (1 s doubling to 10 s),
     * heartbeating, until `timeoutSeconds`; then HostUnreachable. Read-only.
     */
    async waitForHost(
      input: z.input<typeof WaitInput>,
    ): Promise<{ bootId: string; waitedMs: number; attempts: number }> {
      const { host, bootIdBefore, timeoutSeconds } = parseInput(WaitInput, input, 'waitForHost');
      const h = pool.host(host);
      const { signal } = activityIO();
      const t0 = Date.now();
      const deadline = t0 + timeoutSeconds * 1000;
      const needNewBoot = bootIdBefore !== undefined && !isTestbedHost(h);
      let delay = 1000;
      let last = 'no answer yet';
      return withHeartbeat(async () => {
        for (let attempts = 1; ; attempts++) {
          try {
            const id = await bootId(host, 10_000);
            if (needNewBoot && id === bootIdBefore) {
              last = 'still on the boot before the reboot';
              pool.drop(host);
            } else {
              const engine = fleet.docker.engine(host);
              await dockerOp(host, 'ping', signal, () => abortable(engine.version(), signal, 10_000));
              return { bootId: id, waitedMs: Date.now() - t0, attempts };
            }
          } catch (err) {
            if (signal?.aborted) throw err;
            last = (err as Error).message;
            pool.drop(host);
          }
          if (Date.now() + delay > deadline)
            throw failure(
              FailureType.HostUnreachable,
              `${host} did not come back within ${timeoutSeconds} s (${attempts} attempts; last: ${last})`,
              { host, attempts },
            );
          await sleep(delay, signal);
          delay = Math.min(delay * 2, 10_000);
        }
      }, 2000);
    },

    /**
     * One GET to the site's backend on `backendHost` from the proxy host (see probeBackend.ts),
     * judged like a health check (Unhealthy, retryable, on the wrong status or text). Read-only.
     */
    async checkBackendHealth(
      input: z.input<typeof ProbeBackendInput>,
    ): Promise<{ status: number; ms: number }> {
      const i = parseInput(ProbeBackendInput, input, 'checkBackendHealth');
      hostWithRole(fleet, i.proxyHost, 'proxy');
      const backend = pool.host(i.backendHost);
      const probe = await probeBackend(
        fleet,
        {
          proxyHost: i.proxyHost,
          backendHost: i.backendHost,
          address: backend.address,
          port: i.port,
          domain: i.domain,
          path: i.path,
          timeoutMs: i.timeoutMs,
        },
        activityIO().signal,
      );
      return judgeProbe(probe, i, i.backendHost);
    },
  };
}

export type HostActivities = ReturnType<typeof makeHostActivities>;
