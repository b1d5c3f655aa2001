import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createActivities } from '../../activities';
import type { Fleet } from '../../activities/fleet';
import type { ProbeResult } from '../../activities/proxy/probe';
import { PATCH_STATE_DIR } from '../../activities/host/commands';
import type { Placement } from '../../schema/site';
import { deprovisionSite, provisionSite } from '../../workflows';
import { patchProgressQuery, type PatchRollProgress } from '../../protocol/patchRoll';
import { fetchSite, testSite } from '../support/site';

/** Shared by the patch-roll tests: sites on the bed, a traffic poller, marker files, cleanup. */

export interface TestSiteOnBed {
  siteId: string;
  domain: string;
  placement: Placement;
}

export async function provision(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  appServers: number,
  /** Where its id sorts among the others' (locks are taken in sorted order): `t-<prefix>…`. */
  idPrefix = '',
): Promise<TestSiteOnBed> {
  const site = testSite({ appServers, siteId: `t-${idPrefix}${Math.random().toString(36).slice(2, 8)}` });
  const r = await env.client.workflow.execute(provisionSite, {
    taskQueue,
    workflowId: `provision-${site.siteId}`,
    args: [{ site, triggeredBy: 'test' }],
  });
  return { siteId: site.siteId, domain: site.domains[0]!, placement: r.placement };
}

export async function deprovision(env: TestWorkflowEnvironment, taskQueue: string, siteId: string) {
  await env.client.workflow.execute(deprovisionSite, {
    taskQueue,
    workflowId: `deprovision-${siteId}-${Date.now()}`,
    args: [{ siteId, skipFinalBackup: true }],
  });
}

const polls = new Set<{ stop(): Promise<unknown> }>();

/** Stop every poller still running (a test that failed half-way). */
export async function stopAllPolls() {
  await Promise.all([...polls].map((p) => p.stop()));
}

/** GETs through the proxy, one after another, until stopped: every status (or error) seen. */
export function poll(fleet: Fleet, domain: string) {
  const seen: { status: number | string; siteState?: string; at: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r: ProbeResult = await fetchSite(fleet, domain);
        seen.push({ status: r.status, siteState: r.siteState, at: Date.now() });
      } catch (err) {
        seen.push({ status: `error: ${(err as Error).message}`, at: Date.now() });
      }
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  const handle = {
    seen,
    async stop() {
      running = false;
      polls.delete(handle);
      await loop;
      return seen;
    },
  };
  polls.add(handle);
  return handle;
}

/** A patch command that counts its runs in a file of the host's own /root (private per bed host). */
export function markerCommand(marker: string, extra = 'sleep 1.5'): string[] {
  return ['sh', '-c', `echo "$(hostname) $(date +%s.%N)" >> "$1"; ${extra}`, 'qm-test-patch', marker];
}

export async function markerCount(fleet: Fleet, host: string, marker: string): Promise<number> {
  const r = await fleet.pool.exec(host, ['sh', '-c', 'test -e "$1" && wc -l < "$1" || echo 0', 'qm', marker]);
  return Number(r.stdout.trim());
}

export async function cleanHost(fleet: Fleet, host: string, marker: string) {
  await fleet.pool.exec(host, ['rm', '-rf', marker, PATCH_STATE_DIR, '/run/reboot-required']);
}

/** Put every backend of the site back to active and its route to active on every proxy (test cleanup). */
export async function readmitAll(fleet: Fleet, site: TestSiteOnBed) {
  const acts = createActivities(fleet);
  for (const proxy of site.placement.proxyHosts) {
    const route = await acts.readSiteRoute({ host: proxy, siteId: site.siteId });
    if (!route) continue;
    await acts.putSiteRoute({
      host: proxy,
      route: { ...route, mode: 'active', backends: route.backends.map((b) => ({ ...b, state: 'active' })) },
    });
  }
}

/**
 * How the tests poll a roll or a host (with eventually): a workflow that runs a local activity
 * answers no query until it ends or heartbeats, so a failed probe is tried again, for up to a minute.
 */
export const ROLL_POLL = { timeoutMs: 60_000, intervalMs: 100, retryErrors: true } as const;

export function progressOf(env: TestWorkflowEnvironment, workflowId: string): Promise<PatchRollProgress> {
  return env.client.workflow.getHandle(workflowId).query(patchProgressQuery);
}

/**
 * Run `fn` with a started roll; if `fn` fails while the roll still runs, cancel it and wait for
 * it to end, so that it releases its site locks (the next test and the cleanup need them).
 */
export async function withRoll<T>(
  handle: {
    workflowId: string;
    cancel(): Promise<unknown>;
    result(): Promise<unknown>;
    describe(): Promise<{ status: { name: string } }>;
  },
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((await handle.describe()).status.name === 'RUNNING') {
      await handle.cancel();
      await handle.result().catch(() => undefined);
    }
    throw err;
  }
}

/** When `workflowId` was granted the lock of `siteId` (its lockGranted signals), in ms. */
export async function grantTimes(
  env: TestWorkflowEnvironment,
  workflowId: string,
  siteId: string,
): Promise<number[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const out: number[] = [];
  for (const e of history.events ?? []) {
    const a = e.workflowExecutionSignaledEventAttributes;
    if (a?.signalName !== 'lockGranted') continue;
    const record = JSON.parse(Buffer.from(a.input!.payloads![0]!.data!).toString()) as { siteId: string };
    if (record.siteId === siteId) out.push(Number(e.eventTime!.seconds) * 1000 + e.eventTime!.nanos! / 1e6);
  }
  return out;
}
