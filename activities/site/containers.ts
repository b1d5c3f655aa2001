import type { ApplicationFailure } from '@temporalio/common';
import type { Profile } from '../../schema/profile';
import { siteNames, type Placement, type SiteSpec } from '../../schema/site';
import { activityIO, withHeartbeat } from '../context';
import {
  ensureContainer,
  removeContainer,
  stopContainer,
  type EnsureContainerAction,
} from '../docker/container';
import { callOptions, dockerOp, statusOf } from '../docker/failures';
import { ensureImage } from '../docker/image';
import { listContainers, type ContainerSummary } from '../docker/listContainers';
import { removeNetwork } from '../docker/network';
import { ensureNetwork } from '../docker/network';
import { waitHealthy } from '../docker/waitHealthy';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { isMountedArgv, NOT_MOUNTED } from '../storage/commands';
import {
  LABELS,
  RenderError,
  renderSiteContainer,
  SITE_ROLES,
  usesPlaceholder,
  type SiteRole,
} from './render';
import { readSitePassword } from './secrets';

/**
 * A site's containers on one host: made from its profile (render.ts), and stopped, started and
 * removed as a group, found by their qm.site label.
 */

export interface EnsureSiteContainerInput {
  siteId: string;
  host: string;
  role: SiteRole;
  profile: Profile;
  site: SiteSpec;
  placement: Placement;
  release: string;
  timeoutMs: number;
}

/**
 * Render the container of `role` and make it so on `host`, healthy: the image (copied from a
 * fleet host that has it if missing), the site network, the container, then its health. Every
 * step is create-if-absent or compare-then-replace (ensureImage, ensureNetwork, ensureContainer),
 * and the render is a pure function of the input and the kept DB password, so a second run with
 * the same input finds the same container and returns `unchanged`; a new release (or profile)
 * replaces it. The DB password is read from the DB host here and goes only into the container's
 * env (in the engine's API request body): it is not returned and not in any failure.
 */
export async function ensureSiteContainer(
  fleet: Fleet,
  i: EnsureSiteContainerInput,
): Promise<{ id: string; action: EnsureContainerAction }> {
  const { siteId, host, role, profile, site, placement, release } = i;
  if (site.siteId !== siteId)
    throw failure(FailureType.InvalidInput, `site.siteId is ${site.siteId}, not ${siteId}`, {
      fields: ['site.siteId'],
    });
  const runsHere = role === 'cache' ? host === placement.cacheHost : placement.appHosts.includes(host);
  if (!runsHere)
    throw failure(
      FailureType.InvalidInput,
      `host: the ${role} container of ${siteId} runs on ${role === 'cache' ? placement.cacheHost : placement.appHosts.join(', ')}, not ${host}`,
      { fields: ['host'], host, role },
    );
  fleet.pool.host(host);
  fleet.pool.host(placement.dbHost);
  fleet.pool.host(placement.cacheHost);

  return withHeartbeat(async () => {
    const spec = await renderWithPassword(fleet, { profile, role, site, placement, release });
    // a bind of the site's files must be the shared mount, never a directory of this host alone
    if (spec.mounts.some((m) => m.type === 'bind' && m.source === siteNames(siteId).mountDir)) {
      const problem = await filesMountProblem(fleet, host, siteId, placement.storageHost);
      if (problem) throw problem;
    }
    await ensureImageAndNetwork(fleet, host, siteId, spec);
    const { id, action } = await ensureContainer(fleet, host, spec);
    await waitHealthy(fleet, host, spec.name, i.timeoutMs);
    return { id, action };
  });
}

/**
 * What a site's container needs on the host before it is created, both at once: its image
 * (copied from another host if absent) and the site's network. Each is create-if-absent.
 */
export async function ensureImageAndNetwork(
  fleet: Fleet,
  host: string,
  siteId: string,
  spec: { image: string; network?: string },
): Promise<void> {
  await Promise.all([
    ensureImage(fleet, host, spec.image),
    ensureNetwork(fleet, host, { name: spec.network!, labels: { [LABELS.site]: siteId } }),
  ]);
}

/**
 * The container spec of `role` (and `slot`) for the site, rendered from its profile with the DB
 * password read on the DB host when the profile uses it (it goes only into the spec's env: never
 * returned, never in a failure). A profile that does not render is InvalidInput naming the field.
 * Pure but for the read of the kept password: the same input renders the same spec.
 */
export async function renderWithPassword(
  fleet: Fleet,
  r: Omit<Parameters<typeof renderSiteContainer>[0], 'values'>,
): Promise<ReturnType<typeof renderSiteContainer>> {
  const dbHost = fleet.pool.host(r.placement.dbHost);
  const cacheHost = fleet.pool.host(r.placement.cacheHost);
  const dbPassword = usesPlaceholder(r.profile, r.role, 'db.password')
    ? await readSitePassword(fleet.pool, dbHost.name, r.site.siteId)
    : undefined;
  try {
    return renderSiteContainer({
      ...r,
      values: { dbHostAddress: dbHost.address, cacheHostAddress: cacheHost.address, dbPassword },
    });
  } catch (err) {
    if (!(err instanceof RenderError)) throw err;
    throw failure(
      FailureType.InvalidInput,
      `cannot render the ${r.role} container of ${r.site.siteId}: ${err.message}`,
      { fields: [err.field] },
    );
  }
}

/** The site's containers on the host, in start order (cache, app, cron, then anything else). */
async function siteContainers(fleet: Fleet, host: string, siteId: string): Promise<ContainerSummary[]> {
  const list = await listContainers(fleet, host, { [LABELS.site]: siteId });
  const rank = (c: ContainerSummary) => {
    const r = SITE_ROLES.indexOf(c.labels[LABELS.role] as SiteRole);
    return r < 0 ? SITE_ROLES.length : [1, 0, 2][r]!; // cache first: the app may connect to it at start
  };
  return list.sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1));
}

/**
 * Remove every container labelled qm.site=<site> on the host (gracefully stopped first), then the
 * site network. Safe twice: the second run finds no container and no network and removes nothing.
 * Containers we did not create are refused (Conflict) by removeContainer, even with the label.
 */
export async function removeSiteContainers(
  fleet: Fleet,
  host: string,
  siteId: string,
): Promise<{ removed: string[]; network: 'removed' | 'absent' }> {
  fleet.pool.host(host);
  return withHeartbeat(async () => {
    const removed: string[] = [];
    for (const c of (await siteContainers(fleet, host, siteId)).reverse()) {
      const r = await removeContainer(fleet, host, c.name);
      if (r.result === 'removed') removed.push(c.name);
    }
    const network = await removeNetwork(fleet, host, siteNames(siteId).network);
    return { removed, network: network.result };
  });
}

/**
 * Stop the site's containers on the host (cron first, cache last). Safe twice: stopped or missing
 * containers are outcomes (`already-stopped`, `absent`), not errors. The containers keep their
 * restart policy, so an engine restart brings them back: a suspended site is also unrouted.
 */
export async function stopSiteContainers(
  fleet: Fleet,
  host: string,
  siteId: string,
): Promise<{ containers: { name: string; result: 'stopped' | 'already-stopped' | 'absent' }[] }> {
  fleet.pool.host(host);
  return withHeartbeat(async () => {
    const containers = [];
    for (const c of (await siteContainers(fleet, host, siteId)).reverse())
      containers.push({ name: c.name, result: (await stopContainer(fleet, host, c.name)).result });
    return { containers };
  });
}

/**
 * Why the site's files cannot be used on the host, if they cannot: not mounted (Conflict:
 * mountSiteFiles must run first), or mounted and not answering (its sshfs cannot reach the storage
 * host: CommandFailed naming that host, retried, since sshfs reconnects by itself once the storage
 * host is back). Read-only.
 */
export async function filesMountProblem(
  fleet: Fleet,
  host: string,
  siteId: string,
  storageHost: string,
): Promise<ApplicationFailure | undefined> {
  const r = await fleet.pool.exec(host, isMountedArgv(siteId), {
    ...activityIO(),
    timeoutMs: 30_000,
    check: false,
  });
  if (r.code === 0) return undefined;
  const where = siteNames(siteId).mountDir;
  if (r.code === NOT_MOUNTED)
    return failure(
      FailureType.Conflict,
      `${host}: the files of ${siteId} are not mounted at ${where}: mountSiteFiles must run first`,
      { host, siteId },
    );
  const said = r.stderr.trim().split('\n').pop() ?? '';
  return failure(
    FailureType.CommandFailed,
    `${host}: the files of ${siteId} (${where}, mounted from ${storageHost}) do not answer: ${said || `exit ${r.code}`}`,
    { host, siteId, storageHost, code: r.code },
  );
}

/**
 * Running, and healthy if it has a health check, by the engine's listing ("Up 3 minutes
 * (healthy)"; "(health: starting)" and "(unhealthy)" are not; no parenthesis: no health check).
 */
export function runningAndHealthy(c: Pick<ContainerSummary, 'state' | 'status'>): boolean {
  return c.state === 'running' && (/\(healthy\)/.test(c.status) || !/\((health|unhealthy)/.test(c.status));
}

/**
 * Start the site's containers on the host (cache first) and wait until each is healthy. Safe
 * twice: a running container is left as it is (`already-running`), and when the
 * listing shows every one running and healthy, nothing else is asked. A host with none of the
 * site's containers is a Conflict: there is nothing to resume, the site must be provisioned there.
 */
export async function startSiteContainers(
  fleet: Fleet,
  host: string,
  siteId: string,
  timeoutMs: number,
): Promise<{ containers: { name: string; result: 'started' | 'already-running' }[] }> {
  fleet.pool.host(host);
  const { signal } = activityIO();
  const engine = fleet.docker.engine(host);
  return withHeartbeat(async () => {
    const list = await siteContainers(fleet, host, siteId);
    if (!list.length)
      throw failure(FailureType.Conflict, `${host} has no containers of site ${siteId} to start`, {
        host,
        siteId,
      });
    // the usual case after a patch without a reboot: the listing alone says all is well
    if (list.every(runningAndHealthy))
      return { containers: list.map((c) => ({ name: c.name, result: 'already-running' as const })) };
    const containers: { name: string; result: 'started' | 'already-running' }[] = [];
    for (const c of list) {
      const result = await dockerOp(host, `start container ${c.name}`, signal, async () => {
        try {
          await engine.getContainer(c.id).start(callOptions(signal));
          return 'started' as const;
        } catch (err) {
          if (statusOf(err) === 304) return 'already-running' as const;
          throw err;
        }
      });
      containers.push({ name: c.name, result });
    }
    for (const c of list) await waitHealthy(fleet, host, c.name, timeoutMs);
    return { containers };
  });
}
