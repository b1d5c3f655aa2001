import { z } from 'zod';
import { hostName, slug } from '../../schema/common';
import { Profile } from '../../schema/profile';
import { DomainName, HealthExpectation } from '../../schema/route';
import { Placement, SiteId, siteNames, SiteSpec, type Placement as PlacementT } from '../../schema/site';
import { verifyDatabaseName } from '../backup/layout';
import { activityIO } from '../context';
import { dropDatabase, dropUser, ensureDatabase, ensureUser } from '../db/admin';
import { snapshotName } from '../db/names';
import { snapshotDatabase, type Snapshot } from '../db/snapshot';
import type { Fleet } from '../fleet';
import { hostWithRole, parseInput } from '../input';
import { probeThroughProxy } from '../proxy/probe';
import {
  ensureSiteContainer,
  removeSiteContainers,
  startSiteContainers,
  stopSiteContainers,
} from './containers';
import { judgeProbe } from './health';
import { placeSite } from './place';
import { DEFAULT_PROFILES_DIR, loadProfile } from './profiles';
import { SITE_ROLES } from './render';
import { ensureSitePassword, removeSiteSecrets } from './secrets';

/** The inputs of the site activities: one plain JSON object each, checked at the edge. */

const LoadProfileInput = z.strictObject({ name: slug('profile', 64) });
const PlaceSiteInput = z.strictObject({ siteId: SiteId, appServers: z.number().int().min(1).max(8) });
const SiteOnDbHost = z.strictObject({ siteId: SiteId, dbHost: hostName });
const EnsureSiteDatabaseInput = SiteOnDbHost.extend({
  /** The hosts whose containers connect to the database (their inventory addresses are allowed). */
  clientHosts: z.array(hostName).min(1).max(32),
});
const SnapshotSiteDatabaseInput = SiteOnDbHost.extend({ name: snapshotName });

/** A release: what the qm.release label says (a tag, a commit, a build number). */
export const Release = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'release must be letters, digits, . _ - (at most 128)');

const HEALTH_TIMEOUT = z
  .number()
  .int()
  .min(1000)
  .max(30 * 60_000)
  .default(120_000);

const EnsureSiteContainerInput = z.strictObject({
  siteId: SiteId,
  host: hostName,
  role: z.enum(SITE_ROLES),
  profile: Profile,
  site: SiteSpec,
  placement: Placement,
  release: Release,
  /** How long the container may take to become healthy. */
  timeoutMs: HEALTH_TIMEOUT,
});
const SiteOnHost = z.strictObject({ siteId: SiteId, host: hostName });
const StartSiteContainersInput = SiteOnHost.extend({ timeoutMs: HEALTH_TIMEOUT });
const CheckSiteHealthInput = z.strictObject({
  proxyHost: hostName,
  domain: DomainName,
  ...HealthExpectation,
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
});

export interface SiteActivitiesOptions {
  /** Where the profiles are (default: profiles/ at the repository root). */
  profilesDir?: string;
}

/**
 * The site-level activities that provisionSite, deprovisionSite, suspendSite and resumeSite call.
 * Each takes one plain JSON object, validated here (InvalidInput naming the field, never retried);
 * why each is safe to run twice is said on it, or on the function it calls.
 */
export function makeSiteActivities(fleet: Fleet, opts: SiteActivitiesOptions = {}) {
  const pool = fleet.pool;
  const profilesDir = opts.profilesDir ?? DEFAULT_PROFILES_DIR;

  return {
    /** profiles/<name>.yaml, validated. Read-only. */
    async loadProfile(input: z.input<typeof LoadProfileInput>): Promise<Profile> {
      const { name } = parseInput(LoadProfileInput, input, 'loadProfile');
      return loadProfile(name, profilesDir);
    },

    /**
     * Where the site runs (see decidePlacement). Read-only, and stable: a site that already has
     * containers, a database or files somewhere is placed there again, so a retry, or a re-run of
     * a half-done provision, lands where the first run started.
     */
    async placeSite(input: z.input<typeof PlaceSiteInput>): Promise<PlacementT> {
      const { siteId, appServers } = parseInput(PlaceSiteInput, input, 'placeSite');
      return placeSite(fleet, siteId, appServers);
    },

    /**
     * The site's database and its user, who may connect from the client hosts' addresses only,
     * with the password kept on the DB host (made there once, reused after). Safe twice: the
     * password is created only if absent, the database IF NOT EXISTS, and the user converges on
     * exactly these hosts with the same password. Returns names only: the password never enters
     * workflow history.
     */
    async ensureSiteDatabase(
      input: z.input<typeof EnsureSiteDatabaseInput>,
    ): Promise<{ database: string; user: string }> {
      const { siteId, dbHost, clientHosts } = parseInput(
        EnsureSiteDatabaseInput,
        input,
        'ensureSiteDatabase',
      );
      hostWithRole(fleet, dbHost, 'db');
      const fromHosts = [...new Set(clientHosts.map((h) => pool.host(h).address))];
      const { database, dbUser: user } = siteNames(siteId);
      const password = await ensureSitePassword(pool, dbHost, siteId);
      await ensureDatabase(pool, dbHost, database);
      await ensureUser(pool, dbHost, { user, db: database, password, fromHosts });
      return { database, user };
    },

    /**
     * Drop the site's user, its database (and the scratch database its backups are verified in, if
     * a verification cut short left it) and its kept password, in that order (so an interrupted
     * drop leaves the password for a re-run to find). Safe twice: each step tolerates absence.
     * Take a snapshot first if the data matters (snapshotSiteDatabase).
     */
    async dropSiteDatabase(input: z.input<typeof SiteOnDbHost>): Promise<{
      database: string;
      user: string;
      droppedAccounts: string[];
      droppedDatabase: boolean;
      secrets: 'removed' | 'absent';
    }> {
      const { siteId, dbHost } = parseInput(SiteOnDbHost, input, 'dropSiteDatabase');
      hostWithRole(fleet, dbHost, 'db');
      const { database, dbUser: user } = siteNames(siteId);
      const { dropped } = await dropUser(pool, dbHost, user);
      const { dropped: droppedDatabase } = await dropDatabase(pool, dbHost, database);
      await dropDatabase(pool, dbHost, verifyDatabaseName(siteId));
      const secrets = await removeSiteSecrets(pool, dbHost, siteId);
      return { database, user, droppedAccounts: dropped, droppedDatabase, secrets };
    },

    /**
     * A snapshot of the site's database on its DB host (/srv/qm/snapshots/<db>/<name>.sql.gz).
     * Safe twice: a complete snapshot of that name is kept, never overwritten (see snapshotDatabase).
     */
    async snapshotSiteDatabase(input: z.input<typeof SnapshotSiteDatabaseInput>): Promise<Snapshot> {
      const { siteId, dbHost, name } = parseInput(SnapshotSiteDatabaseInput, input, 'snapshotSiteDatabase');
      hostWithRole(fleet, dbHost, 'db');
      return snapshotDatabase(pool, { host: dbHost, db: siteNames(siteId).database, name });
    },

    /** See ensureSiteContainer (containers.ts): render, image, network, container, healthy. */
    async ensureSiteContainer(input: z.input<typeof EnsureSiteContainerInput>) {
      const i = parseInput(EnsureSiteContainerInput, input, 'ensureSiteContainer');
      return ensureSiteContainer(fleet, i);
    },

    /** Every container of the site on the host, and its network. Safe twice (see removeSiteContainers). */
    async removeSiteContainers(input: z.input<typeof SiteOnHost>) {
      const { siteId, host } = parseInput(SiteOnHost, input, 'removeSiteContainers');
      return removeSiteContainers(fleet, host, siteId);
    },

    /** Stop the site's containers on the host. Safe twice (see stopSiteContainers). */
    async stopSiteContainers(input: z.input<typeof SiteOnHost>) {
      const { siteId, host } = parseInput(SiteOnHost, input, 'stopSiteContainers');
      return stopSiteContainers(fleet, host, siteId);
    },

    /** Start the site's containers on the host and wait until healthy. Safe twice (see startSiteContainers). */
    async startSiteContainers(input: z.input<typeof StartSiteContainersInput>) {
      const { siteId, host, timeoutMs } = parseInput(StartSiteContainersInput, input, 'startSiteContainers');
      return startSiteContainers(fleet, host, siteId, timeoutMs);
    },

    /**
     * One GET through a proxy host with the site's domain as Host; a status or body that is not
     * the expected one is Unhealthy (retryable), with the status and an excerpt. Read-only.
     */
    async checkSiteHealth(
      input: z.input<typeof CheckSiteHealthInput>,
    ): Promise<{ status: number; ms: number }> {
      const i = parseInput(CheckSiteHealthInput, input, 'checkSiteHealth');
      const proxy = hostWithRole(fleet, i.proxyHost, 'proxy');
      const probe = await probeThroughProxy({
        address: proxy.address,
        domain: i.domain,
        path: i.path,
        timeoutMs: i.timeoutMs,
        signal: activityIO().signal,
      });
      return judgeProbe(probe, i);
    },
  };
}

export type SiteActivities = ReturnType<typeof makeSiteActivities>;
