import { SPEC_HASH_LABEL } from '../../schema/container';
import { activityIO } from '../context';
import type { Fleet } from '../fleet';
import { labelFilter } from './commands';
import { callOptions, dockerOp } from './failures';

type IO = ReturnType<typeof activityIO>;

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  /** running, exited, created, restarting, paused, dead */
  state: string;
  /** The engine's words: "Up 3 minutes (healthy)". */
  status: string;
  labels: Record<string, string>;
  /** Present on containers ensureContainer made. */
  specHash?: string;
}

/**
 * Every container on the host, running or not, that carries all the given labels (e.g.
 * `{ 'qm.site': 'example' }`): what reconciliation compares with what should be there. Read-only.
 */
export async function listContainers(
  fleet: Fleet,
  host: string,
  labels: Record<string, string>,
  io: IO = activityIO(),
): Promise<ContainerSummary[]> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  const list = await dockerOp(host, 'list containers', signal, () =>
    engine.listContainers({ ...labelFilter(labels), ...callOptions(signal) }),
  );
  return list
    .map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      state: c.State,
      status: c.Status,
      labels: c.Labels,
      specHash: c.Labels[SPEC_HASH_LABEL],
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
