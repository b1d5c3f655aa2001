import type { Client } from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Fleet } from '../activities/fleet';
import { proxyPaths } from '../activities/proxy/layout';
import { LastGoodBackup, SiteId, State } from '../protocol/searchAttributes';

/**
 * The platform's own metrics, Node side (the per-operation ones are counted inside the workflows,
 * workers/workflowInterceptors.ts, and the SDK's come from Temporal core): facts about the fleet
 * that no single workflow run reports, refreshed every QM_METRICS_REFRESH_SECONDS.
 *
 *   qm_site_last_good_backup_timestamp_seconds{site_id,state}  from the site workflows'
 *     LastGoodBackup search attribute (visibility): one query, whatever the number of sites;
 *   qm_site_last_good_backup_age_seconds{site_id,state}  the same as an age at scrape time
 *     (+Inf for a site never backed up);
 *   qm_host_drained_backends{host}  site backends drained on each app host, read from the
 *     proxies' stored routes (the truth nginx serves, so it survives worker restarts and is the
 *     same whichever worker reads it); a host is out of rotation when it is > 0;
 *   qm_metrics_refresh_failures_total{source}, qm_metrics_refreshed_timestamp_seconds{source}:
 *     a gauge that is not refreshed says so instead of showing stale values as fresh;
 *   and Node's process metrics (qm_process_*, qm_nodejs_*: heap, event loop lag, handles).
 */

export interface PlatformMetricsOptions {
  client: Client;
  fleet: Fleet;
  logger: Logger;
  /** Wall clock, for the backup age (tests pass their own). */
  now?: () => number;
}

type Source = 'backups' | 'proxies';

export class PlatformMetrics {
  readonly registry = new Registry();
  private readonly backupAt = new Map<string, { state: string; at: number | undefined }>();
  private readonly drained: Gauge<'host'>;
  private readonly backupTimestamp: Gauge<'site_id' | 'state'>;
  private readonly failures: Counter<'source'>;
  private readonly refreshed: Gauge<'source'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly opts: PlatformMetricsOptions) {
    const registers = [this.registry];
    const now = opts.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry, prefix: 'qm_' });
    this.backupTimestamp = new Gauge({
      name: 'qm_site_last_good_backup_timestamp_seconds',
      help: "Time of each site's last good backup (site workflow's LastGoodBackup); 0 = never",
      labelNames: ['site_id', 'state'],
      registers,
    });
    const backupAt = this.backupAt;
    new Gauge({
      name: 'qm_site_last_good_backup_age_seconds',
      help: "Age of each site's last good backup at scrape time; +Inf = never backed up",
      labelNames: ['site_id', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [siteId, { state, at }] of backupAt)
          this.set(
            { site_id: siteId, state },
            at === undefined ? Infinity : Math.max(0, (now() - at) / 1000),
          );
      },
    });
    this.drained = new Gauge({
      name: 'qm_host_drained_backends',
      help: 'Site backends drained on each app host, as the proxies route them (> 0: out of rotation)',
      labelNames: ['host'],
      registers,
    });
    this.failures = new Counter({
      name: 'qm_metrics_refresh_failures_total',
      help: 'Refreshes of the fleet-wide gauges that failed, by source',
      labelNames: ['source'],
      registers,
    });
    this.refreshed = new Gauge({
      name: 'qm_metrics_refreshed_timestamp_seconds',
      help: 'When the fleet-wide gauges were last refreshed successfully, by source',
      labelNames: ['source'],
      registers,
    });
    for (const source of ['backups', 'proxies'] as const) this.failures.inc({ source }, 0);
  }

  /** Refresh now, then every `everySeconds` (the timer does not keep the process alive). */
  start(everySeconds: number): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), everySeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One refresh of every source; a failing source is counted and logged, the others go on. */
  refresh(): Promise<void> {
    this.running ??= Promise.all([
      this.guard('backups', () => this.refreshBackups()),
      this.guard('proxies', () => this.refreshDrained()),
    ]).then(
      () => (this.running = undefined),
      () => (this.running = undefined),
    );
    return this.running;
  }

  private async guard(source: Source, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
      this.refreshed.set({ source }, Date.now() / 1000);
    } catch (err) {
      this.failures.inc({ source });
      this.opts.logger.warn(`metrics: refreshing ${source} failed`, { source, error: err });
    }
  }

  private async refreshBackups(): Promise<void> {
    const seen = new Map<string, { state: string; at: number | undefined }>();
    const query = "WorkflowType = 'site' AND ExecutionStatus = 'Running'";
    for await (const wf of this.opts.client.workflow.list({ query })) {
      const sa = wf.typedSearchAttributes;
      const state = sa.get(State) ?? 'unknown';
      if (state === 'deleted') continue;
      const siteId = sa.get(SiteId) ?? wf.workflowId.replace(/^site:/, '');
      seen.set(siteId, { state, at: sa.get(LastGoodBackup)?.getTime() });
    }
    this.backupAt.clear();
    this.backupTimestamp.reset();
    for (const [siteId, v] of seen) {
      this.backupAt.set(siteId, v);
      this.backupTimestamp.set({ site_id: siteId, state: v.state }, v.at === undefined ? 0 : v.at / 1000);
    }
  }

  private async refreshDrained(): Promise<void> {
    const { fleet } = this.opts;
    const counts = new Map<string, number>(
      fleet.hosts.filter((h) => h.roles.includes('app')).map((h) => [h.name, 0]),
    );
    const proxies = fleet.hosts.filter((h) => h.roles.includes('proxy'));
    const routes = await Promise.all(proxies.map((p) => readStoredRoutes(fleet, p.name)));
    // a backend drained on any proxy is out of rotation there: count it once per site and host
    const drained = new Set<string>();
    for (const route of routes.flat())
      for (const b of route.backends ?? [])
        if (b.state === 'drained' && b.host) drained.add(`${route.siteId}\0${b.host}`);
    for (const key of drained) {
      const host = key.split('\0')[1]!;
      counts.set(host, (counts.get(host) ?? 0) + 1);
    }
    this.drained.reset();
    for (const [host, n] of counts) this.drained.set({ host }, n);
  }
}

interface StoredRoute {
  siteId?: string;
  backends?: { host?: string; state?: string }[];
}

/**
 * Every route JSON on a proxy host (activities/proxy/layout.ts: sites/<site>.json), in one SSH
 * command, separated by NUL bytes. Read-only.
 */
export async function readStoredRoutes(fleet: Fleet, proxy: string): Promise<StoredRoute[]> {
  const script = 'for f in "$1"/*.json; do [ -f "$f" ] && cat "$f" && printf "\\0"; done; exit 0';
  const r = await fleet.pool.exec(proxy, ['sh', '-c', script, 'qm-metrics', proxyPaths.sites], {
    timeoutMs: 30_000,
  });
  const routes: StoredRoute[] = [];
  for (const text of r.stdout.split('\0')) {
    if (!text.trim()) continue;
    try {
      routes.push(JSON.parse(text) as StoredRoute);
    } catch {
      // a file being replaced right now: the next refresh reads it
    }
  }
  return routes;
}
