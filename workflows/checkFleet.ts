import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, setHandler, startChild, workflowInfo } from '@temporalio/workflow';
import {
  CheckFleetInput,
  checkFleetProgress,
  type CheckFleetResult,
  type SiteProblems,
} from '../protocol/checkFleet';
import { fleetCheckRepairId, INITIAL_RELEASE } from '../protocol/ids';
import type { Profile } from '../schema/profile';
import type { SiteRecord } from '../schema/site';
import { fleetCheck1m } from './lib/activities';
import { parseWorkflowInput, rootMessage } from './lib/input';
import { repairSite } from './repairSite';

type View = Awaited<ReturnType<typeof fleetCheck1m.viewSitesOnHost>>[string];
type ProxyStatus = Awaited<ReturnType<typeof fleetCheck1m.proxyStatus>>;

/**
 * Fleet check: every host must answer over SSH, through its Docker engine, and from its MariaDB;
 * then, on the hosts that answer, what the sites need: each proxy's nginx running with each
 * site's route as its record says (active: on the live ports; suspended: the suspended page),
 * each app host's sshfs mount of its sites' files there and seen by their containers, the sites'
 * containers running on their recorded release (cron beside the first app server, the cache).
 * Hosts and sites are checked in parallel; one failing host is reported, not fatal to the others.
 * With `repair`, a repairSite is started for every site that is failed or out of line (a child
 * left running when the check ends, one per site and check run); sites with an operation under
 * way are not checked, so the check never races a deploy, and never doubles a repair queued by
 * an earlier check.
 */
export async function checkFleet(input: CheckFleetInput = {}): Promise<CheckFleetResult> {
  const {
    hosts: named,
    sites: onlySites,
    repair,
  } = parseWorkflowInput(CheckFleetInput, input, 'checkFleet input');
  const result: CheckFleetResult = {
    healthy: [],
    failed: [],
    sitesChecked: 0,
    busy: [],
    unanswered: [],
    sites: [],
    repairs: [],
  };
  setHandler(checkFleetProgress, () => result);

  const hosts = named ?? (await fleetCheck1m.listHosts()).map((h) => h.name);
  const answering = new Set<string>();
  await Promise.all(
    hosts.map(async (host) => {
      try {
        await fleetCheck1m.checkHost(host);
        answering.add(host);
      } catch (err) {
        result.failed.push({ host, error: describe(err) });
      }
    }),
  );

  const listed = await fleetCheck1m.listPlacedSites(onlySites ? { siteIds: onlySites } : {});
  const placed = listed.sites;
  result.unanswered = listed.unanswered;
  const sites: SiteRecord[] = [];
  for (const s of placed)
    if (s.operations.length) result.busy.push({ siteId: s.record.siteId, operations: s.operations });
    else sites.push(s.record);
  result.sitesChecked = sites.length;

  // what each host that answers must serve: one read per host, for all its sites at once
  const proxiesOf = (r: SiteRecord) => r.placement?.proxyHosts ?? [];
  const containersOf = (r: SiteRecord) =>
    r.placement ? [...new Set([...r.placement.appHosts, r.placement.cacheHost])] : [];
  const proxyStatus = new Map<string, ProxyStatus>();
  const views = new Map<string, Record<string, View>>();
  const siteCheckFailed = (host: string, err: unknown) => {
    answering.delete(host);
    result.failed.push({ host, error: `site checks: ${describe(err)}` });
  };
  await Promise.all(
    [...answering].map(async (host) => {
      const proxied = sites.filter((r) => proxiesOf(r).includes(host)).map((r) => r.siteId);
      const contained = sites.filter((r) => containersOf(r).includes(host)).map((r) => r.siteId);
      try {
        const [p, v] = await Promise.all([
          proxied.length ? fleetCheck1m.proxyStatus({ host, siteIds: proxied }) : undefined,
          contained.length ? fleetCheck1m.viewSitesOnHost({ host, siteIds: contained }) : undefined,
        ]);
        if (p) proxyStatus.set(host, p);
        if (v) views.set(host, v);
      } catch (err) {
        siteCheckFailed(host, err);
      }
    }),
  );
  result.healthy = hosts.filter((h) => answering.has(h)).sort();

  // the profiles say which containers a site has (cron, cache): one read per profile in use
  const profiles = new Map<string, Profile>();
  await Promise.all(
    [...new Set(sites.map((r) => r.spec?.profile).filter((p) => p !== undefined))].map(async (name) => {
      try {
        profiles.set(name, await fleetCheck1m.loadProfile({ name }));
      } catch {
        // judged without it: the app containers and routes only
      }
    }),
  );
  for (const record of sites) {
    const profile = record.spec ? profiles.get(record.spec.profile) : undefined;
    const problems = siteProblems(record, profile, proxyStatus, views);
    if (problems.length) result.sites.push({ siteId: record.siteId, state: record.state, problems });
  }

  if (repair) {
    const { runId } = workflowInfo();
    // a failed provision has no site to return to: a deprovision sweeps it, not a repair
    const placedIds = new Set(
      sites
        .filter((r) => r.placement && r.spec && ['active', 'suspended'].includes(targetStateOf(r)))
        .map((r) => r.siteId),
    );
    await Promise.all(
      result.sites.map(async (s) =>
        result.repairs.push(
          placedIds.has(s.siteId)
            ? await startRepair(s, runId)
            : {
                siteId: s.siteId,
                started: false,
                why: 'its provision did not finish: deprovision it (skipFinalBackup), then provision it again',
              },
        ),
      ),
    );
    result.repairs.sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
  }
  return result;
}

/** The state a site returns to once in line (a failed one's state before it failed). */
const targetStateOf = (r: SiteRecord) =>
  r.state === 'failed' ? (r.failure?.stateBefore ?? 'active') : r.state;

/** What is not as the site's record says, on the hosts that answered (`<host>: <what>`). */
function siteProblems(
  record: SiteRecord,
  profile: Profile | undefined,
  proxyStatus: Map<string, ProxyStatus>,
  views: Map<string, Record<string, View>>,
): string[] {
  const problems: string[] = [];
  const f = record.failure;
  if (record.state === 'failed')
    problems.push(
      f
        ? `failed: ${f.operation} failed at "${f.step}"${f.host ? ` on ${f.host}` : ''}: ${f.cause}`
        : 'failed (no cause recorded)',
    );
  const placement = record.placement;
  if (!placement) return problems;
  const suspended =
    record.state === 'suspended' || (record.state === 'failed' && f?.stateBefore === 'suspended');
  const release = record.release ?? INITIAL_RELEASE;

  for (const host of placement.proxyHosts) {
    const p = proxyStatus.get(host);
    if (!p) continue; // did not answer: reported with the hosts
    if (!p.nginxRunning) problems.push(`${host}: nginx is not running`);
    const route = p.routes[record.siteId];
    if (route === null || route === undefined) problems.push(`${host}: no route`);
    else if (route === 'invalid') problems.push(`${host}: the route file is not a valid route`);
    else if (suspended && route.mode !== 'suspended')
      problems.push(`${host}: the route is ${route.mode}, the site is suspended`);
    else if (!suspended && route.mode !== 'active') problems.push(`${host}: the route is ${route.mode}`);
    else if (!suspended && route.backends.some((b) => b.port !== placement.port || b.state !== 'active'))
      problems.push(`${host}: the route does not send every app server's live port traffic`);
  }

  for (const host of placement.appHosts) {
    const v = views.get(host)?.[record.siteId];
    if (!v) continue;
    if (!v.filesMounted) problems.push(`${host}: the shared files are not mounted`);
    if (suspended) continue;
    const live = v.containers.find((c) => c.role === 'app' && c.slot === 'live');
    problems.push(...containerProblems(host, 'app', live, release));
    if (v.containers.some((c) => c.role === 'app' && c.slot === 'standby'))
      problems.push(`${host}: a standby app container is left`);
  }
  if (suspended || !profile) return problems;
  const cronHost = placement.appHosts[0]!;
  const cronView = views.get(cronHost)?.[record.siteId];
  if (profile.containers.cron && cronView)
    problems.push(
      ...containerProblems(
        cronHost,
        'cron',
        cronView.containers.find((c) => c.role === 'cron'),
        release,
      ),
    );
  const cacheView = views.get(placement.cacheHost)?.[record.siteId];
  if (profile.containers.cache && cacheView)
    problems.push(
      ...containerProblems(
        placement.cacheHost,
        'cache',
        cacheView.containers.find((c) => c.role === 'cache'),
        // the cache is made once, on the initial release: deploys never change it
        INITIAL_RELEASE,
      ),
    );
  return problems;
}

/** A container that is missing, not running and healthy, on another release, or blind to the shared files. */
function containerProblems(
  host: string,
  role: string,
  c: View['containers'][number] | undefined,
  release: string,
): string[] {
  if (!c) return [`${host}: no ${role} container`];
  const out: string[] = [];
  if (!c.healthy) out.push(`${host}: ${role} container ${c.name} is ${c.state}, not running and healthy`);
  if (c.release !== release)
    out.push(`${host}: ${role} runs release ${c.release}, the record says ${release}`);
  if (c.seesFiles === false) out.push(`${host}: ${role} container ${c.name} does not see the shared files`);
  return out;
}

/** Start the site's repair (left running when the check ends); or why none was started. */
async function startRepair(s: SiteProblems, runId: string): Promise<CheckFleetResult['repairs'][number]> {
  const workflowId = fleetCheckRepairId(s.siteId, runId);
  try {
    await startChild(repairSite, {
      workflowId,
      args: [
        {
          siteId: s.siteId,
          triggeredBy: 'fleet-check',
          reason: `fleet check: ${s.problems.join('; ')}`.slice(0, 200),
        },
      ],
      // the repair holds the site's lock: it must finish (and release it) whatever becomes of the check
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    return { siteId: s.siteId, workflowId, started: true };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      return { siteId: s.siteId, workflowId, started: false, why: 'already started by this check' };
    return { siteId: s.siteId, workflowId, started: false, why: rootMessage(err) };
  }
}

/** An activity failure's own message (the ActivityFailure wrapper only says "activity failed"). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? err.cause.message : err.message;
}
