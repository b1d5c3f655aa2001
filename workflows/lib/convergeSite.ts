import { CancellationScope } from '@temporalio/workflow';
import { INITIAL_RELEASE } from '../../protocol/ids';
import type { HostRepair, OperationProgress, SiteRepairReport } from '../../protocol/operations';
import type { Profile } from '../../schema/profile';
import { STANDBY_PORT_OFFSET } from '../../schema/release';
import { siteNames, type SiteFailure, type SiteRecord } from '../../schema/site';
import {
  appHostsOf,
  converge,
  proxyHostsOf,
  short,
  slotRoute,
  type SwitchContext,
  type SwitchState,
} from '../deploy/switch';
import { health30s, long15m, step1m } from './activities';
import { healthExpectation } from './health';
import { rootMessage } from './input';
import { HostStepFailed } from './parallel';
import type { SiteLock } from './siteLock';

/**
 * Put a site back as its record says, on every host that answers (repairSite; a deploy or a
 * rollback whose switch back lost a host). Idempotent: each step is an ensure that finds what is
 * already right and says so. In order:
 *   who answers (a short SSH command per host; the others are left alone and reported)
 *   → each proxy's nginx running (ensureProxy) → the database back on a failed deploy's snapshot,
 *   behind the maintenance page, when the record says it must be → the shared files mounted on
 *   each app host (files a host wrote while they were not mounted are set aside, never lost)
 *   → the cache → the app servers: active: the zero-downtime switch (switch.ts) onto the
 *   recorded release over the app hosts that answer, the others drained in every route, no
 *   standby left, cron beside the first app host's live container; suspended: the suspended page
 *   and the containers stopped; a database still in doubt: the maintenance page
 *   → health through every proxy that answers.
 * Never throws for what it could not do: it reports it, per host, in `outOfLine`.
 */

export interface ConvergeSiteInput {
  /** The record to converge onto (spec and placement set; a failed site's `failure` says where to return). */
  record: SiteRecord;
  profile: Profile;
  /** Inventory addresses, by host name. */
  addresses: Record<string, string>;
  progress: OperationProgress;
  drainSeconds: number;
  healthTimeoutMs: number;
  /** Move the progress on (the operation's own step()). */
  step: (name: string) => void;
}

/** The state a site returns to once in line: a failed site's state before it failed, else its own. */
export function targetState(record: SiteRecord): 'active' | 'suspended' {
  const s = record.state === 'failed' ? record.failure?.stateBefore : record.state;
  return s === 'suspended' ? 'suspended' : 'active';
}

export async function convergeSite(c: ConvergeSiteInput): Promise<SiteRepairReport> {
  const { record, profile } = c;
  const spec = record.spec!;
  const placement = record.placement!;
  const siteId = record.siteId;
  const release = record.release ?? INITIAL_RELEASE;
  const goal = targetState(record);
  const hasCache = !!profile.containers.cache;

  // every host the site has, with what it is to the site
  const roles = new Map<string, string[]>();
  const role = (host: string, r: string) => roles.set(host, [...(roles.get(host) ?? []), r]);
  placement.appHosts.forEach((h) => role(h, 'app'));
  placement.proxyHosts.forEach((h) => role(h, 'proxy'));
  role(placement.dbHost, 'db');
  role(placement.storageHost, 'storage');
  if (hasCache) role(placement.cacheHost, 'cache');
  const hosts: Record<string, HostRepair> = {};
  for (const [host, r] of roles)
    hosts[host] = { roles: r, reachable: true, changed: [], alreadyRight: [], outOfLine: [] };
  const changed = (host: string, what: string) => hosts[host]!.changed.push(what);
  const right = (host: string, what: string) => hosts[host]!.alreadyRight.push(what);
  const outOfLine = (host: string, what: string) => hosts[host]!.outOfLine.push(what);
  const general: string[] = [];

  c.step('who answers');
  const reach = await Promise.all([...roles.keys()].map((host) => step1m.reachHost({ host })));
  for (const r of reach)
    if (!r.reachable) {
      hosts[r.host]!.reachable = false;
      hosts[r.host]!.error = r.error;
      outOfLine(r.host, `unreachable (${r.error ?? 'no answer'}): left as it is`);
    }
  /** Hosts the switch leaves alone: those that do not answer, and those whose prerequisite failed. */
  const leftAlone = new Set(reach.filter((r) => !r.reachable).map((r) => r.host));
  const answers = (h: string) => !leftAlone.has(h);

  c.step('proxies');
  await eachHost(placement.proxyHosts.filter(answers), async (host) => {
    try {
      const p = await step1m.ensureProxy({ host });
      if (p.started) changed(host, 'nginx started');
      else if (p.changed) changed(host, 'proxy configuration updated, nginx reloaded');
      else right(host, 'nginx running');
    } catch (err) {
      outOfLine(host, `nginx: ${rootMessage(err)}`);
      leftAlone.add(host);
    }
  });
  const proxies = placement.proxyHosts.filter(answers);

  let mode: SiteRepairReport['target']['mode'] = goal;
  const ctx: SwitchContext = {
    siteId,
    spec,
    placement,
    profile,
    addresses: c.addresses,
    progress: c.progress,
    drainSeconds: c.drainSeconds,
    healthTimeoutMs: c.healthTimeoutMs,
    unreachable: [...leftAlone],
  };
  const putRoutes = async (routeMode: 'maintenance' | 'suspended', what: string) =>
    eachHost(proxies, async (host) => {
      try {
        const put = await step1m.putSiteRoute({ host, route: slotRoute(ctx, 'live', routeMode) });
        (put.changed ? changed : right)(host, `route: ${what}`);
      } catch (err) {
        outOfLine(host, `route: ${rootMessage(err)}`);
      }
    });

  let database: SiteRepairReport['database'];
  const snapshot = record.failure?.databaseSnapshot;
  if (snapshot) {
    c.step(`database back to snapshot ${snapshot}`);
    const dbHost = placement.dbHost;
    if (!answers(dbHost) || !proxies.length) {
      database = {
        snapshot,
        restored: false,
        error: answers(dbHost) ? 'no proxy answers (for the maintenance page)' : `${dbHost} does not answer`,
      };
      outOfLine(dbHost, `database: must go back to snapshot ${snapshot} before the site serves again`);
      mode = 'maintenance';
    } else {
      // nobody may write to a database being restored, nor the old code run on one in doubt
      await putRoutes('maintenance', 'maintenance page while the database is restored');
      try {
        await long15m.restoreDatabaseSnapshot({
          host: dbHost,
          db: siteNames(siteId).database,
          name: snapshot,
        });
        database = { snapshot, restored: true };
        changed(dbHost, `database restored from snapshot ${snapshot}`);
      } catch (err) {
        database = { snapshot, restored: false, error: rootMessage(err) };
        outOfLine(dbHost, `database: restoring snapshot ${snapshot}: ${rootMessage(err)}`);
        mode = 'maintenance';
      }
    }
  }

  c.step('shared files');
  const storageAnswers = answers(placement.storageHost);
  await eachHost(placement.appHosts.filter(answers), async (host) => {
    if (!storageAnswers) {
      // its mount cannot answer either (a command touching it may hang): its containers are left as they are
      outOfLine(host, `files: not checked, ${placement.storageHost} does not answer`);
      leftAlone.add(host);
      return;
    }
    try {
      const m = await step1m.mountSiteFiles({
        siteId,
        host,
        storageHost: placement.storageHost,
        setAside: true,
      });
      if (m.action === 'unchanged') right(host, 'files mounted');
      else changed(host, `files ${m.action}`);
      if (m.setAside) changed(host, `files written while they were not mounted set aside in ${m.setAside}`);
    } catch (err) {
      outOfLine(host, `files: ${rootMessage(err)}`);
      leftAlone.add(host); // its containers would not see the shared files
    }
  });

  const containerHosts = [...new Set([...placement.appHosts, ...(hasCache ? [placement.cacheHost] : [])])];
  if (hasCache && mode !== 'suspended') {
    c.step('cache');
    const host = placement.cacheHost;
    if (answers(host))
      try {
        const r = await long15m.ensureSiteContainer({
          siteId,
          host,
          role: 'cache',
          profile,
          site: spec,
          placement,
          // the cache is made once, at provision, and deploys never change it
          release: INITIAL_RELEASE,
          timeoutMs: c.healthTimeoutMs,
        });
        (r.action === 'unchanged' ? right : changed)(
          host,
          `cache ${r.action === 'unchanged' ? 'running' : r.action}`,
        );
      } catch (err) {
        outOfLine(host, `cache: ${rootMessage(err)}`);
      }
  }

  ctx.unreachable = [...leftAlone];
  const apps = appHostsOf(ctx);
  if (mode === 'suspended') {
    c.step('suspended page, containers stopped');
    await putRoutes('suspended', 'suspended page');
    await eachHost(
      containerHosts.filter((h) => answers(h)),
      async (host) => {
        try {
          if (placement.appHosts.includes(host)) {
            const standby = await step1m.removeStandbyContainer({ siteId, host });
            if (standby.result === 'removed') changed(host, 'standby removed');
          }
          const stopped = await step1m.stopSiteContainers({ siteId, host });
          const now = stopped.containers.filter((s) => s.result === 'stopped').map((s) => s.name);
          if (now.length) changed(host, `stopped ${now.join(', ')}`);
          else right(host, 'containers stopped');
        } catch (err) {
          outOfLine(host, `containers: ${rootMessage(err)}`);
        }
      },
    );
  } else if (mode === 'maintenance') {
    c.step('maintenance page');
    await putRoutes('maintenance', 'maintenance page (the database is in doubt)');
    general.push(`the site shows the maintenance page until its database is back on snapshot ${snapshot}`);
  } else if (!apps.length || !proxies.length) {
    general.push(
      `${!apps.length ? 'no app server' : 'no proxy'} answers: the app servers and routes are left as they are`,
    );
  } else {
    c.step(`app servers on ${short(release)}`);
    try {
      const state = await observe(ctx, apps, release);
      const r = await converge(ctx, state, release);
      for (const host of apps) {
        if (r.switched) changed(host, `app live on ${short(release)} (switched through the standby)`);
        else right(host, `app live on ${short(release)}`);
        if (r.standbys[host] === 'removed') changed(host, 'standby removed');
        else right(host, 'no standby');
      }
      for (const host of proxies)
        (r.routes[host] ? changed : right)(host, `route: ${short(release)} on the live ports`);
      const cronHost = placement.appHosts[0]!;
      if (r.cron && answers(cronHost))
        (r.cron === 'unchanged' ? right : changed)(
          cronHost,
          `cron ${r.cron === 'unchanged' ? 'running' : r.cron}`,
        );
    } catch (err) {
      const host = err instanceof HostStepFailed ? err.host : undefined;
      if (host && hosts[host]) outOfLine(host, `app servers: ${rootMessage(err)}`);
      else general.push(`app servers: ${rootMessage(err)}`);
    }
    for (const host of placement.appHosts.filter((h) => !apps.includes(h)))
      outOfLine(host, 'drained in every route until it is repaired');
  }

  const health: Record<string, string> = {};
  if (mode === 'active' && apps.length) {
    c.step('health through the proxies');
    await eachHost(proxies, async (proxyHost) => {
      try {
        const h = await health30s.checkSiteHealth({
          proxyHost,
          domain: spec.domains[0]!,
          ...healthExpectation(profile),
        });
        health[proxyHost] = `ok (${h.status} in ${h.ms} ms)`;
      } catch (err) {
        health[proxyHost] = rootMessage(err);
        outOfLine(proxyHost, `health: ${rootMessage(err)}`);
      }
    });
  }

  const lines = [
    ...Object.entries(hosts).flatMap(([host, h]) => h.outOfLine.map((what) => `${host}: ${what}`)),
    ...general,
  ];
  return {
    target: { state: goal, release, mode },
    hosts,
    ...(database ? { database } : {}),
    health,
    outOfLine: lines,
    changed: Object.values(hosts).some((h) => h.changed.length > 0),
  };
}

/**
 * Where the switch stands on the app hosts that answer: the live containers already right
 * (release, healthy, seeing the shared files) on every one of them, or not; and whether the
 * proxies route to standby containers that are all healthy (they may keep serving while the live
 * ones are replaced), or not (then standbys on the release are started first).
 */
async function observe(ctx: SwitchContext, apps: string[], release: string): Promise<SwitchState> {
  const [route, ...views] = await Promise.all([
    step1m.readSiteRoute({ host: proxyHostsOf(ctx)[0]!, siteId: ctx.siteId }),
    ...apps.map((host) => step1m.viewSitesOnHost({ host, siteIds: [ctx.siteId] })),
  ]);
  const onHost = views.map((v) => v[ctx.siteId]!.containers);
  const liveRight = onHost.every((cs) =>
    cs.some(
      (c) =>
        c.role === 'app' && c.slot === 'live' && c.release === release && c.healthy && c.seesFiles !== false,
    ),
  );
  const standbyPort = ctx.placement.port + STANDBY_PORT_OFFSET;
  const servingStandby =
    !!route &&
    route.mode === 'active' &&
    route.backends.some((b) => b.state === 'active') &&
    route.backends.every((b) => b.state !== 'active' || b.port === standbyPort);
  const standbysHealthy = onHost.every((cs) =>
    cs.some((c) => c.role === 'app' && c.slot === 'standby' && c.healthy && c.seesFiles !== false),
  );
  if (liveRight) return { serving: servingStandby ? 'standby' : 'live', live: release };
  return { serving: servingStandby && standbysHealthy ? 'standby' : 'live', live: 'mixed' };
}

/**
 * A switch back that could not finish: the site is recorded failed (with its cause, so that
 * nothing else runs on it but a rollback, a repair or a deprovision), then converged at once on
 * every host that answers; the failure then lists what is still out of line, which this returns
 * (none: every host answered after all, and the site is back in its state before). Runs even if
 * the workflow is cancelled.
 */
export async function failAndConverge(
  lock: SiteLock,
  ctx: SwitchContext,
  failure: SiteFailure,
  op: { step(name: string): void },
): Promise<string[]> {
  return CancellationScope.nonCancellable(async () => {
    await lock.update({ state: 'failed', failure });
    const record: SiteRecord = { ...lock.record, state: 'failed', failure };
    try {
      const report = await convergeSite({
        record,
        profile: ctx.profile,
        addresses: ctx.addresses,
        progress: ctx.progress,
        drainSeconds: ctx.drainSeconds,
        healthTimeoutMs: ctx.healthTimeoutMs,
        step: (name) => op.step(`converging: ${name}`),
      });
      // everything back in line after all (the host answered again): the site is as it was
      if (report.outOfLine.length === 0) {
        await lock.update({ state: targetState(record), failure: null });
        return [];
      }
      const { databaseSnapshot: _restoredOrNot, ...rest } = failure;
      await lock.update({
        failure: {
          ...rest,
          ...(report.database && !report.database.restored
            ? { databaseSnapshot: report.database.snapshot }
            : {}),
          outOfLine: report.outOfLine,
        },
      });
      return report.outOfLine;
    } catch (err) {
      return [...failure.outOfLine, `converging the servers that answer: ${rootMessage(err)}`];
    }
  });
}

/** `fn` on every host at once; each reports its own outcome (none throws). */
async function eachHost(hosts: string[], fn: (host: string) => Promise<void>): Promise<void> {
  await Promise.all(hosts.map((h) => fn(h)));
}
