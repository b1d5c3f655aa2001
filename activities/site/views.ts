import type { AppSlot } from '../../schema/release';
import { MAX_STOP_TIMEOUT_SEC, type ContainerSpec } from '../../schema/container';
import { siteNames } from '../../schema/site';
import { activityIO } from '../context';
import { callOptions, CALL_TIMEOUT_MS, dockerOp } from '../docker/failures';
import { listContainers } from '../docker/listContainers';
import type { Fleet } from '../fleet';
import { filesViewsArgv, parseFilesViews, processKey, SHARED_FILES_FS } from './commands';
import { runningAndHealthy } from './containers';
import { LABELS } from './render';

/**
 * What a site looks like on one of its hosts, read from the host itself: its containers (role,
 * slot, release, running and healthy) and its shared files, from the host (the sshfs mount there
 * and answering) and from inside each running container that binds them (does it see that mount,
 * or the host's bare directory under it?). What repairSite and checkFleet compare with the record.
 */

export interface SiteContainerView {
  name: string;
  role: string;
  slot: AppSlot;
  release: string;
  /** running, exited, created, … (the engine's word). */
  state: string;
  /** Running, and healthy if it has a health check. */
  healthy: boolean;
  /** For a running container that binds the site's files: whether it sees the shared mount there. */
  seesFiles?: boolean;
}

export interface SiteOnHostView {
  /** The site's files are mounted (sshfs) on the host and answer. */
  filesMounted: boolean;
  containers: SiteContainerView[];
}

type IO = ReturnType<typeof activityIO>;

/** The running container's first process and where it binds the site's files, if it does. */
async function filesBind(
  fleet: Fleet,
  host: string,
  siteId: string,
  name: string,
  io: IO,
): Promise<{ pid: number; target: string } | undefined> {
  const info = await dockerOp(host, `inspect container ${name}`, io.signal, () =>
    fleet.docker.engine(host).getContainer(name).inspect(callOptions(io.signal)),
  );
  const target = info.Mounts?.find((m) => m.Source === siteNames(siteId).mountDir)?.Destination;
  return target && info.State.Running && info.State.Pid > 0 ? { pid: info.State.Pid, target } : undefined;
}

/** The sites' containers and files on the host, by site id (a site with nothing there: none, unmounted). Read-only. */
export async function viewSitesOnHost(
  fleet: Fleet,
  host: string,
  siteIds: string[],
  io: IO = activityIO(),
): Promise<Record<string, SiteOnHostView>> {
  const wanted = new Set(siteIds);
  const listed = (await listContainers(fleet, host, {}, io)).filter((c) =>
    wanted.has(c.labels[LABELS.site] ?? ''),
  );
  const binds = await Promise.all(
    listed.map(async (c) =>
      c.state === 'running' ? filesBind(fleet, host, c.labels[LABELS.site]!, c.name, io) : undefined,
    ),
  );
  const r = await fleet.pool.exec(
    host,
    filesViewsArgv({
      mounts: siteIds.map((s) => siteNames(s).mountDir),
      processes: binds.filter((b) => b !== undefined),
    }),
    { ...io, timeoutMs: 60_000 },
  );
  const views = parseFilesViews(r.stdout);
  const out: Record<string, SiteOnHostView> = {};
  for (const siteId of siteIds)
    out[siteId] = { filesMounted: views.mounts[siteNames(siteId).mountDir] === true, containers: [] };
  listed.forEach((c, n) => {
    const bind = binds[n];
    out[c.labels[LABELS.site]!]!.containers.push({
      name: c.name,
      role: c.labels[LABELS.role] ?? 'unknown',
      slot: c.labels[LABELS.slot] === 'standby' ? 'standby' : 'live',
      release: c.labels[LABELS.release] ?? 'unknown',
      state: c.state,
      healthy: runningAndHealthy(c),
      ...(bind ? { seesFiles: views.processes[processKey(bind.pid, bind.target)] === SHARED_FILES_FS } : {}),
    });
  });
  return out;
}

/**
 * A running container that binds the site's files but does not see their mount (it started while
 * the host's mount was missing, so it sees the bare directory under it) is restarted: a start binds
 * the mount that is there now. `restarted`, or `action` as it was. Safe twice: a container that
 * sees the mount is left alone.
 */
export async function restartIfFilesUnseen<A extends string>(
  fleet: Fleet,
  host: string,
  siteId: string,
  spec: Pick<ContainerSpec, 'name' | 'mounts'>,
  action: A,
  io: IO = activityIO(),
): Promise<A | 'restarted'> {
  if (!spec.mounts.some((m) => m.type === 'bind' && m.source === siteNames(siteId).mountDir)) return action;
  const bind = await filesBind(fleet, host, siteId, spec.name, io);
  if (!bind) return action; // not running: the caller's health wait says so
  const r = await fleet.pool.exec(host, filesViewsArgv({ mounts: [], processes: [bind] }), {
    ...io,
    timeoutMs: 60_000,
  });
  if (parseFilesViews(r.stdout).processes[processKey(bind.pid, bind.target)] === SHARED_FILES_FS)
    return action;
  await dockerOp(host, `restart container ${spec.name}`, io.signal, () =>
    fleet.docker
      .engine(host)
      .getContainer(spec.name)
      .restart(callOptions(io.signal, MAX_STOP_TIMEOUT_SEC * 1000 + CALL_TIMEOUT_MS)),
  );
  return 'restarted';
}
