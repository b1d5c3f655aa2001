import { z } from 'zod';
import { hostName } from '../../schema/common';
import { Profile } from '../../schema/profile';
import { DomainName, HealthExpectation } from '../../schema/route';
import { Placement, SiteId, SiteSpec } from '../../schema/site';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { CommitId, GitRepo } from '../git/refs';
import { hostWithRole, parseInput } from '../input';
import { Release } from '../site/activities';
import {
  listReleasesArgv,
  parseReleaseList,
  releasesToPrune,
  removeAllReleasesArgv,
  removeReleasesArgv,
  touchReleaseArgv,
} from './commands';
import { ensureReleaseContainer, removeStandbyContainer, stopCronContainer } from './containers';
import { fetchRelease } from './fetch';
import { runPostDeployHooks } from './hooks';
import { waitBackendHealthy } from './probe';

const SiteOnHost = z.strictObject({ siteId: SiteId, host: hostName });
const FetchReleaseInput = SiteOnHost.extend({ repo: GitRepo, commit: CommitId });
const ReleaseContainerInput = SiteOnHost.extend({
  role: z.enum(['app', 'cron']),
  slot: z.enum(['live', 'standby']),
  release: Release,
  profile: Profile,
  site: SiteSpec,
  placement: Placement,
  timeoutMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 60_000)
    .default(120_000),
});
const Argv = z.array(z.string().min(1).max(4096)).min(1).max(100);
const HooksInput = SiteOnHost.extend({ hooks: z.array(Argv).max(50) });
const ProbeBackendInput = z.strictObject({
  proxyHost: hostName,
  backendHost: hostName,
  port: z.number().int().min(1).max(65535),
  domain: DomainName,
  ...HealthExpectation,
  timeoutMs: z
    .number()
    .int()
    .min(500)
    .max(30 * 60_000)
    .default(60_000),
});
const PruneReleasesInput = SiteOnHost.extend({
  live: CommitId,
  keep: z.number().int().min(1).max(50),
  protect: z.array(Release).max(10).default([]),
});

/**
 * The release activities: a site's code on its app hosts (release folders), its app containers
 * per slot, backend health as the proxy sees it, and the postDeploy hooks. One plain JSON input
 * each, checked here; why each is safe to repeat is said on it or on the function it calls.
 */
export function makeReleaseActivities(fleet: Fleet) {
  const pool = fleet.pool;
  const gitHost = () => fleet.hosts.find((h) => h.roles.includes('git'))?.name;

  return {
    /** The commit's tree in the site's release folder on the host. Safe twice (see fetchRelease). */
    async fetchRelease(input: z.input<typeof FetchReleaseInput>) {
      const i = parseInput(FetchReleaseInput, input, 'fetchRelease');
      hostWithRole(fleet, i.host, 'app');
      const git = gitHost();
      if (!git) throw failure(FailureType.InvalidInput, 'the fleet has no git host');
      return fetchRelease(fleet, { ...i, gitHost: git });
    },

    /** The app container of a slot (or cron) on `release`, healthy. Safe twice (see ensureReleaseContainer). */
    async ensureReleaseContainer(input: z.input<typeof ReleaseContainerInput>) {
      const i = parseInput(ReleaseContainerInput, input, 'ensureReleaseContainer');
      hostWithRole(fleet, i.host, 'app');
      return ensureReleaseContainer(fleet, i);
    },

    /** Stop the site's cron container. Safe twice: a stopped or missing one is an outcome (see stopCronContainer). */
    async stopCronContainer(input: z.input<typeof SiteOnHost>) {
      const { siteId, host } = parseInput(SiteOnHost, input, 'stopCronContainer');
      return stopCronContainer(fleet, host, siteId);
    },

    /** Remove the standby app container. Safe twice: a missing one is `absent`. */
    async removeStandbyContainer(input: z.input<typeof SiteOnHost>) {
      const { siteId, host } = parseInput(SiteOnHost, input, 'removeStandbyContainer');
      return removeStandbyContainer(fleet, host, siteId);
    },

    /** Wait until a backend is healthy as the proxy host sees it. Read-only (see waitBackendHealthy). */
    async probeBackend(input: z.input<typeof ProbeBackendInput>) {
      const i = parseInput(ProbeBackendInput, input, 'probeBackend');
      hostWithRole(fleet, i.proxyHost, 'proxy');
      const backend = pool.host(i.backendHost);
      return waitBackendHealthy(fleet, {
        proxyHost: i.proxyHost,
        backend: { host: backend.name, address: backend.address, port: i.port },
        expect: { domain: i.domain, path: i.path, expectStatus: i.expectStatus, expectText: i.expectText },
        timeoutMs: i.timeoutMs,
      });
    },

    /** The profile's postDeploy hooks in the live app container. Not idempotent: see runPostDeployHooks. */
    async runPostDeployHooks(input: z.input<typeof HooksInput>) {
      const i = parseInput(HooksInput, input, 'runPostDeployHooks');
      hostWithRole(fleet, i.host, 'app');
      return runPostDeployHooks(fleet, i);
    },

    /** The site's complete release folders on the host, newest live first. Read-only. */
    async listReleases(input: z.input<typeof SiteOnHost>): Promise<{ commit: string; liveAt: string }[]> {
      const { siteId, host } = parseInput(SiteOnHost, input, 'listReleases');
      const r = await pool.exec(host, listReleasesArgv(siteId), { ...activityIO(), timeoutMs: 60_000 });
      return parseReleaseList(r.stdout)
        .sort((a, b) => b.liveAt - a.liveAt)
        .map((k) => ({ commit: k.commit, liveAt: new Date(k.liveAt * 1000).toISOString() }));
    },

    /**
     * Mark `live` as the release that went live now, then keep the `keep` most recently live
     * releases (never `live` or those in `protect`) and delete the rest. Safe twice: a second run
     * finds the same folders, newest first, and deletes nothing more.
     */
    async pruneReleases(
      input: z.input<typeof PruneReleasesInput>,
    ): Promise<{ removed: string[]; kept: string[] }> {
      const { siteId, host, live, keep, protect } = parseInput(PruneReleasesInput, input, 'pruneReleases');
      const io = { ...activityIO(), timeoutMs: 5 * 60_000 };
      await pool.exec(host, touchReleaseArgv(siteId, live), io);
      const listed = await pool.exec(host, listReleasesArgv(siteId), io);
      const kept = parseReleaseList(listed.stdout);
      const removed = releasesToPrune(kept, keep, [live, ...protect]);
      await pool.exec(host, removeReleasesArgv(siteId, removed), io);
      const left = kept
        .filter((k) => !removed.includes(k.commit))
        .sort((a, b) => Number(b.commit === live) - Number(a.commit === live) || b.liveAt - a.liveAt)
        .map((k) => k.commit);
      return { removed, kept: left };
    },

    /** Every release folder of the site on the host (deprovision). Safe twice: `absent` the second time. */
    async removeSiteReleases(input: z.input<typeof SiteOnHost>): Promise<{ result: 'removed' | 'absent' }> {
      const { siteId, host } = parseInput(SiteOnHost, input, 'removeSiteReleases');
      const r = await pool.exec(host, removeAllReleasesArgv(siteId), {
        ...activityIO(),
        timeoutMs: 5 * 60_000,
      });
      return { result: r.stdout.trim() === 'removed' ? 'removed' : 'absent' };
    },
  };
}

export type ReleaseActivities = ReturnType<typeof makeReleaseActivities>;
