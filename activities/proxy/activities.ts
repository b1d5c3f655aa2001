import { Route, withBackendState } from '../../schema/route';
import { activityIO, withHeartbeat } from '../context';
import { failure, FailureType, isFailureOfType } from '../errors';
import type { Fleet } from '../fleet';
import { unfinishedMarkers } from './commands';
import {
  EnsureProxyInput,
  parseInput,
  ProbeSiteInput,
  proxyHost,
  ProxyStatusInput,
  PutSiteRouteInput,
  SetBackendStateInput,
  SiteOnProxyInput,
  StopProxyInput,
  WaitForInFlightInput,
} from './inputs';
import { PAGES, pagePath, proxyPaths, sitePaths } from './layout';
import { listenAddress, PAGE_HTML, renderBaseConfig, renderRouteJson, renderSiteConfig } from './nginxConfig';
import { probeThroughProxy, type ProbeResult } from './probe';
import {
  applyChange,
  existingFiles,
  GuardMismatch,
  makeDirs,
  proxyProcesses,
  readRemoteFile,
  sha256,
  stopNginx,
  waitInFlightOn,
} from './remote';

export interface ProxyChange {
  /** Files on the proxy host changed. */
  changed: boolean;
  /** The running nginx was reloaded (and has switched to the new configuration). */
  reloaded: boolean;
  /** With waitInFlightSeconds: nginx workers still finishing requests when the wait ended (0: none). */
  lingering?: number;
}

/** The proxy (routing) activities: nginx on the hosts with role `proxy`, one file per site. */
export function makeProxyActivities(fleet: Fleet) {
  /** The site's route as stored on the proxy host, its raw JSON (for compare-and-swap), or nulls. */
  async function storedRoute(
    host: string,
    siteId: string,
  ): Promise<{ route: Route | null; raw: string | null }> {
    const raw = await readRemoteFile(fleet, host, sitePaths(siteId).json);
    if (raw === null) return { route: null, raw };
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch {
      data = undefined;
    }
    const parsed = Route.safeParse(data);
    if (!parsed.success || parsed.data.siteId !== siteId)
      throw failure(
        FailureType.Conflict,
        `${host}: the stored route of ${siteId} (${sitePaths(siteId).json}) is not a valid route; put the route again`,
        { host, siteId },
      );
    return { route: parsed.data, raw };
  }

  /** A site's config and route JSON as they are on the proxy host (null: absent), and any marks of a change cut short. */
  function routeFilesOn(host: string, paths: { conf: string; json: string }) {
    return Promise.all([
      readRemoteFile(fleet, host, paths.conf),
      readRemoteFile(fleet, host, paths.json),
      existingFiles(fleet, host, unfinishedMarkers([paths.conf, paths.json])),
    ]);
  }

  async function writeRoute(
    host: string,
    route: Route,
    opts: {
      /** Compare-and-swap on the file at `path`; `content`: what it held when read (its hash is `sha256`). */
      guard?: { path: string; sha256: string; content?: string };
      /** See ApplyArgs.onlyAddsCapacity. */
      onlyAddsCapacity?: boolean;
      /** Then wait for the requests in flight, this long at most. */
      waitInFlightSeconds?: number;
    } = {},
  ): Promise<ProxyChange> {
    const { guard, onlyAddsCapacity, waitInFlightSeconds } = opts;
    const h = proxyHost(fleet, host);
    const paths = sitePaths(route.siteId);
    const conf = renderSiteConfig(route, { listen: listenAddress(h.address) });
    const json = renderRouteJson(route);
    // a guard's content that differs from the new JSON means a change: no need to read the files
    // first (the apply transaction compares them anyway, and undoes a change cut short)
    if (guard?.content === undefined || guard.content === json) {
      const [liveConf, liveJson, unfinished] = await routeFilesOn(host, paths);
      // equal files are only "what is there" if no earlier change was cut short around them
      if (liveConf === conf && liveJson === json && unfinished.length === 0) {
        if (waitInFlightSeconds === undefined) return { changed: false, reloaded: false };
        // in place already (a repeated call): the requests of its reload may still be running
        const lingering = await waitInFlightOn(fleet, host, waitInFlightSeconds);
        return { changed: false, reloaded: false, lingering };
      }
    }
    const outcome = await applyChange(fleet, host, {
      what: `route of ${route.siteId}`,
      start: false,
      guard: guard && { path: guard.path, sha256: guard.sha256 },
      onlyAddsCapacity,
      waitInFlightSeconds,
      files: [
        { live: paths.conf, content: conf },
        { live: paths.json, content: json },
      ],
    });
    return {
      changed: outcome.changed,
      reloaded: outcome.reloaded,
      ...(outcome.lingering === undefined ? {} : { lingering: outcome.lingering }),
    };
  }

  return {
    /**
     * Set up the proxy on a proxy host: its directories, its pages and its base nginx.conf (each
     * replaced only if different, a new nginx.conf only after `nginx -t` passes), then nginx
     * started if it is not running, or reloaded if the base config changed. Safe to run twice:
     * a second run finds every file equal and nginx running, and changes nothing.
     */
    async ensureProxy(
      input: EnsureProxyInput,
    ): Promise<ProxyChange & { started: boolean; masterPid: number }> {
      const { host } = parseInput(EnsureProxyInput, input, 'ensureProxy');
      const h = proxyHost(fleet, host);
      return withHeartbeat(async () => {
        await makeDirs(fleet, host);
        const outcome = await applyChange(fleet, host, {
          what: 'proxy base configuration',
          start: true,
          files: [
            ...PAGES.map((page) => ({ live: pagePath(page), content: PAGE_HTML[page] })),
            { live: proxyPaths.conf, content: renderBaseConfig({ listen: listenAddress(h.address) }) },
          ],
        });
        const procs = await proxyProcesses(fleet, host);
        if (!procs)
          throw failure(FailureType.CommandFailed, `${host}: nginx is not running after ensureProxy`, {
            host,
          });
        return { ...outcome, masterPid: procs.master };
      });
    },

    /**
     * Route a site: render its nginx config and route JSON; if both equal what is on the host,
     * do nothing (no write, no reload); otherwise apply them as one transaction (nginx -t, then
     * atomic rename and reload; on a failed test the previous files are put back and the running
     * nginx never sees the bad config). Safe to run twice: the second run finds equal files.
     * A stopped proxy is left stopped (ensureProxy starts it); its files are updated. With
     * `waitInFlightSeconds`, it then waits for the requests in flight, as setBackendState does.
     */
    async putSiteRoute(input: PutSiteRouteInput): Promise<ProxyChange> {
      const { host, route, waitInFlightSeconds } = parseInput(PutSiteRouteInput, input, 'putSiteRoute');
      proxyHost(fleet, host);
      return withHeartbeat(() => writeRoute(host, route, { waitInFlightSeconds }));
    },

    /**
     * Stop routing a site: delete its config and route JSON and reload; its domains then get the
     * default server's 404. Safe to run twice: a site with no files is already removed.
     */
    async removeSiteRoute(input: SiteOnProxyInput): Promise<ProxyChange> {
      const { host, siteId } = parseInput(SiteOnProxyInput, input, 'removeSiteRoute');
      proxyHost(fleet, host);
      const paths = sitePaths(siteId);
      return withHeartbeat(async () => {
        const [conf, json, unfinished] = await routeFilesOn(host, paths);
        if (conf === null && json === null && unfinished.length === 0)
          return { changed: false, reloaded: false };
        const outcome = await applyChange(fleet, host, {
          what: `removal of the route of ${siteId}`,
          start: false,
          files: [
            { live: paths.conf, content: null },
            { live: paths.json, content: null },
          ],
        });
        return { changed: outcome.changed, reloaded: outcome.reloaded };
      });
    },

    /**
     * Drain (no new requests; those in flight finish) or readmit the backends a site has on one
     * host. A drain returns once no nginx worker takes new requests on the old configuration; a
     * readmit once the new workers run (the old ones, routing as before, stop within ~100 ms);
     * with `waitInFlightSeconds`, either then waits for the requests in flight (as waitForInFlight,
     * in the same command) and says how many workers still held some (`lingering`). A
     * read-modify-write guarded by the stored JSON's hash, so a concurrent change of the same route
     * is never lost (it is re-read and the change re-applied). Safe to run twice: a backend already
     * in the wanted state changes nothing (and a wait asked for still waits).
     */
    async setBackendState(input: SetBackendStateInput): Promise<ProxyChange & { route: Route }> {
      const { host, siteId, backendHost, backendPort, state, expected, waitInFlightSeconds } = parseInput(
        SetBackendStateInput,
        input,
        'setBackendState',
      );
      proxyHost(fleet, host);
      const paths = sitePaths(siteId);
      const hasBackend = (r: Route) =>
        r.backends.some(
          (b) => b.host === backendHost && (backendPort === undefined || b.port === backendPort),
        );
      // the caller's copy, if it is of this site and has the backend: stored routes are canonical
      // JSON, so its hash is the stored file's unless the route changed (then the guard refuses)
      let trusted =
        expected?.siteId === siteId && hasBackend(expected)
          ? { route: expected, raw: renderRouteJson(expected) }
          : undefined;
      return withHeartbeat(async () => {
        for (let attempt = 1; attempt <= 5; attempt++) {
          const { route, raw } = trusted ?? (await storedRoute(host, siteId));
          trusted = undefined;
          if (!route || raw === null)
            throw failure(FailureType.Conflict, `${host}: no route for site ${siteId}`, { host, siteId });
          if (!hasBackend(route))
            throw failure(
              FailureType.Conflict,
              `${host}: site ${siteId} has no backend on ${backendHost}${backendPort ? ':' + backendPort : ''}`,
              { host, siteId, backendHost, backendPort },
            );
          const next = withBackendState(route, backendHost, state, backendPort);
          try {
            // a readmit only adds capacity: it need not wait for the old workers to be told
            // to stop taking requests (they route to the other backends, as they did)
            const change = await writeRoute(host, next, {
              guard: { path: paths.json, sha256: sha256(raw), content: raw },
              onlyAddsCapacity: state === 'active',
              waitInFlightSeconds,
            });
            return { ...change, route: next };
          } catch (err) {
            if (!(err instanceof GuardMismatch)) throw err;
          }
        }
        throw failure(
          FailureType.CommandFailed,
          `${host}: the route of ${siteId} kept changing while its backend state was being set`,
          { host, siteId },
        );
      });
    },

    /**
     * Wait for the requests nginx took before its last changes to finish: until every worker
     * those reloads told to shut down has exited, at most `timeoutSeconds`. `lingering`: how many
     * are still running then (0: nothing in flight on the old configuration). Read-only (it only
     * watches), so safe to run any number of times.
     */
    async waitForInFlight(input: WaitForInFlightInput): Promise<{ lingering: number; waitedMs: number }> {
      const { host, timeoutSeconds } = parseInput(WaitForInFlightInput, input, 'waitForInFlight');
      proxyHost(fleet, host);
      const t0 = Date.now();
      const lingering = await withHeartbeat(() => waitInFlightOn(fleet, host, timeoutSeconds));
      return { lingering, waitedMs: Date.now() - t0 };
    },

    /** The site's route as stored on the proxy host, or null if it has none. Read-only. */
    async readSiteRoute(input: SiteOnProxyInput): Promise<Route | null> {
      const { host, siteId } = parseInput(SiteOnProxyInput, input, 'readSiteRoute');
      proxyHost(fleet, host);
      return (await storedRoute(host, siteId)).route;
    },

    /**
     * Whether the proxy's nginx runs, and the stored route of each site (null: none; `invalid`: a
     * file that is not a valid route of that site). What the fleet check compares with the sites'
     * records. Read-only.
     */
    async proxyStatus(
      input: ProxyStatusInput,
    ): Promise<{ nginxRunning: boolean; routes: Record<string, Route | null | 'invalid'> }> {
      const { host, siteIds } = parseInput(ProxyStatusInput, input, 'proxyStatus');
      proxyHost(fleet, host);
      return withHeartbeat(async () => {
        const nginxRunning = (await proxyProcesses(fleet, host)) !== null;
        const routes: Record<string, Route | null | 'invalid'> = {};
        for (let i = 0; i < siteIds.length; i += 16)
          await Promise.all(
            siteIds.slice(i, i + 16).map(async (siteId) => {
              try {
                routes[siteId] = (await storedRoute(host, siteId)).route;
              } catch (err) {
                if (!isFailureOfType(err, FailureType.Conflict)) throw err;
                routes[siteId] = 'invalid';
              }
            }),
          );
        return { nginxRunning, routes };
      });
    },

    /**
     * One GET through a proxy host with the site's domain as Host: status, Retry-After, site
     * state header and a body excerpt, for health checks through the proxy. Read-only.
     */
    async probeSite(input: ProbeSiteInput): Promise<ProbeResult> {
      const { proxyHost: name, domain, path, timeoutMs } = parseInput(ProbeSiteInput, input, 'probeSite');
      const h = proxyHost(fleet, name);
      return probeThroughProxy({ address: h.address, domain, path, timeoutMs, signal: activityIO().signal });
    },

    /**
     * Stop the proxy's nginx gracefully (decommission, or a test's cleanup). Safe to run twice:
     * one not running is already stopped. Its files stay, for the next ensureProxy.
     */
    async stopProxy(input: StopProxyInput): Promise<{ stopped: boolean }> {
      const { host, graceSeconds } = parseInput(StopProxyInput, input, 'stopProxy');
      proxyHost(fleet, host);
      return { stopped: await withHeartbeat(() => stopNginx(fleet, host, graceSeconds)) };
    },
  };
}

export type ProxyActivities = ReturnType<typeof makeProxyActivities>;
