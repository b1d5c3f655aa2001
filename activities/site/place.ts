import type Docker from 'dockerode';
import { siteNames, type Placement } from '../../schema/site';
import { activityIO } from '../context';
import { runSqlScript } from '../db/client';
import { callOptions, dockerOp } from '../docker/failures';
import type { Fleet } from '../fleet';
import { isDirectoryArgv, listeningArgv, parseListeningPorts, SITE_DATABASES_SQL } from './commands';
import { decidePlacement, type PlacementFacts, type SiteContainerSeen } from './placement';
import { LABELS } from './render';

/**
 * placeSite's look at the fleet: read-only, so safe to run any number of times. What it sees, the
 * pure decidePlacement turns into a placement.
 */

interface HostContainers {
  /** Containers carrying a qm.site label (of any site). */
  siteContainers: number;
  /** This site's containers. */
  mine: SiteContainerSeen[];
  /** Host ports published by every other container, running or not. */
  otherPorts: number[];
}

/** The host ports a container publishes: from the list when it runs, else from its port bindings. */
async function publishedPorts(
  engine: Docker,
  c: Docker.ContainerInfo,
  signal?: AbortSignal,
): Promise<number[]> {
  if (c.State === 'running') return c.Ports.map((p) => p.PublicPort).filter((p): p is number => Boolean(p));
  const info = await engine.getContainer(c.Id).inspect(callOptions(signal));
  const bindings = (info.HostConfig.PortBindings ?? {}) as Record<string, { HostPort?: string }[] | null>;
  return Object.values(bindings)
    .flatMap((list) => list ?? [])
    .map((b) => Number(b.HostPort))
    .filter((p) => Number.isInteger(p) && p > 0);
}

async function containersOn(fleet: Fleet, host: string, siteId: string): Promise<HostContainers> {
  const { signal } = activityIO();
  const engine = fleet.docker.engine(host);
  return dockerOp(host, 'list containers', signal, async () => {
    const all = await engine.listContainers({ all: true, ...callOptions(signal) });
    const out: HostContainers = { siteContainers: 0, mine: [], otherPorts: [] };
    for (const c of all) {
      const labels = c.Labels ?? {};
      const ports = await publishedPorts(engine, c, signal);
      if (labels[LABELS.site] !== undefined) out.siteContainers++;
      if (labels[LABELS.site] === siteId)
        out.mine.push({ host, role: labels[LABELS.role] ?? '', hostPorts: ports });
      else out.otherPorts.push(...ports);
    }
    return out;
  });
}

export async function observePlacement(
  fleet: Fleet,
  siteId: string,
  appServers: number,
): Promise<PlacementFacts> {
  const io = activityIO();
  const hosts = fleet.hosts;
  const names = siteNames(siteId);
  const appHosts = hosts.filter((h) => h.roles.includes('app')).map((h) => h.name);
  const dbHosts = hosts.filter((h) => h.roles.includes('db')).map((h) => h.name);
  const storageHosts = hosts.filter((h) => h.roles.includes('storage')).map((h) => h.name);

  const [apps, dbs, storage] = await Promise.all([
    Promise.all(
      appHosts.map(async (h) => {
        const [containers, listening] = await Promise.all([
          containersOn(fleet, h, siteId),
          fleet.pool.exec(h, listeningArgv(), { ...io, timeoutMs: 30_000 }),
        ]);
        return { host: h, containers, listening: parseListeningPorts(listening.stdout) };
      }),
    ),
    Promise.all(
      dbHosts.map(async (h) => ({
        host: h,
        dbs: (await runSqlScript(fleet.pool, h, SITE_DATABASES_SQL)).map((r) => r[0]!),
      })),
    ),
    Promise.all(
      storageHosts.map(async (h) => ({
        host: h,
        has:
          (
            await fleet.pool.exec(h, isDirectoryArgv(names.filesDir), {
              ...io,
              timeoutMs: 30_000,
              check: false,
            })
          ).code === 0,
      })),
    ),
  ]);

  const siteContainers: Record<string, number> = {};
  const usedPorts: Record<string, number[]> = {};
  const existing: SiteContainerSeen[] = [];
  for (const a of apps) {
    siteContainers[a.host] = a.containers.siteContainers;
    existing.push(...a.containers.mine);
    // a listener on one of the site's own ports is the site's container (docker-proxy): not "used"
    const own = new Set(a.containers.mine.flatMap((c) => c.hostPorts));
    usedPorts[a.host] = [
      ...new Set([...a.containers.otherPorts, ...a.listening.filter((p) => !own.has(p))]),
    ].sort((x, y) => x - y);
  }
  return {
    siteId,
    database: names.database,
    appServers,
    hosts,
    siteContainers,
    usedPorts,
    existing,
    siteDatabases: Object.fromEntries(dbs.map((d) => [d.host, d.dbs])),
    storageWithFiles: storage.filter((s) => s.has).map((s) => s.host),
  };
}

/** Observe, then decide (see decidePlacement). */
export async function placeSite(fleet: Fleet, siteId: string, appServers: number): Promise<Placement> {
  return decidePlacement(await observePlacement(fleet, siteId, appServers));
}
