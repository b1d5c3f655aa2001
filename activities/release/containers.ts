import { ApplicationFailure } from '@temporalio/common';
import type { Profile } from '../../schema/profile';
import { siteNames, type Placement, type SiteSpec } from '../../schema/site';
import { activityIO, withHeartbeat } from '../context';
import { ensureContainer, removeContainer } from '../docker/container';
import { waitHealthy } from '../docker/waitHealthy';
import { failure, FailureType, isFailureOfType } from '../errors';
import type { Fleet } from '../fleet';
import { isCommitRelease, type AppSlot } from '../../schema/release';
import { ensureImageAndNetwork, filesMountProblem, renderWithPassword } from '../site/containers';
import { hasReleaseArgv, RELEASE_PRESENT } from './commands';

export interface ReleaseContainerInput {
  siteId: string;
  host: string;
  role: 'app' | 'cron';
  slot: AppSlot;
  release: string;
  profile: Profile;
  site: SiteSpec;
  placement: Placement;
  timeoutMs: number;
}

/**
 * The site's app (live or standby slot) or cron container on `host`, running `release`, healthy.
 * Like ensureSiteContainer (site/containers.ts), with the slot: render (with the DB password read
 * on the DB host, never returned), image, network, container, health. Safe twice: every step is
 * create-if-absent or compare-then-replace, so the same input finds the same container
 * (`unchanged`); another release replaces it. A commit release needs its folder on the host
 * (fetchRelease), and the site's files mount: either missing is a Conflict (a mount that does not
 * answer, its storage host away, is retried: see filesMountProblem). Unhealthy at the
 * deadline is not retried (the deadline was the patience).
 */
export async function ensureReleaseContainer(
  fleet: Fleet,
  i: ReleaseContainerInput,
): Promise<{ name: string; port?: number; action: string }> {
  const { siteId, host, role, slot, release, profile, site, placement } = i;
  if (!placement.appHosts.includes(host))
    throw failure(FailureType.InvalidInput, `host: ${siteId} does not run on ${host}`, { host, siteId });
  fleet.pool.host(placement.dbHost);
  fleet.pool.host(placement.cacheHost);
  const io = activityIO();
  return withHeartbeat(async () => {
    // the reads at once (each is a short command on its host): the spec (with the password from
    // the DB host), whether the release's folder is there, whether the site's files are mounted
    const [spec, releasePresent, mountProblem] = await Promise.all([
      renderWithPassword(fleet, { profile, role, site, placement, release, slot }),
      isCommitRelease(release)
        ? fleet.pool
            .exec(host, hasReleaseArgv(siteId, release), { ...io, check: false })
            .then((r) => r.code === RELEASE_PRESENT)
        : true,
      filesMountProblem(fleet, host, siteId, placement.storageHost),
    ]);
    if (!releasePresent)
      throw failure(
        FailureType.Conflict,
        `${host}: release ${release} of ${siteId} is not there (fetch it first)`,
        {
          host,
          siteId,
          release,
        },
      );
    if (spec.mounts.some((m) => m.source === siteNames(siteId).mountDir) && mountProblem) throw mountProblem;
    await ensureImageAndNetwork(fleet, host, siteId, spec);
    const { action } = await ensureContainer(fleet, host, spec);
    try {
      await waitHealthy(fleet, host, spec.name, i.timeoutMs);
    } catch (err) {
      if (!isFailureOfType(err, FailureType.Unhealthy)) throw err;
      throw ApplicationFailure.create({
        type: FailureType.Unhealthy,
        message: err.message,
        details: err.details ? [...err.details] : undefined,
        nonRetryable: true,
      });
    }
    return { name: spec.name, port: spec.ports[0]?.hostPort, action };
  });
}

/** Remove the standby app container on the host. Safe twice: a missing one is `absent`. */
export async function removeStandbyContainer(
  fleet: Fleet,
  host: string,
  siteId: string,
): Promise<{ result: 'removed' | 'absent' }> {
  fleet.pool.host(host);
  const { result } = await withHeartbeat(() =>
    removeContainer(fleet, host, `${siteNames(siteId).container('app')}-standby`),
  );
  return { result };
}
