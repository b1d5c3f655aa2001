import type Docker from 'dockerode';
import { abortable, callOptions, statusOf } from './failures';

/**
 * Look-ups that answer "absent" with undefined instead of an error. The engine resolves a name in
 * a path (GET /containers/{name}/json) as an exact name OR a unique prefix of an id, so a container
 * called `cafe` that does not exist could resolve to another one whose id starts with cafe: every
 * look-up by name here checks the name it got back, and callers act on the id from then on.
 */

export async function findContainer(
  engine: Docker,
  name: string,
  signal?: AbortSignal,
): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    const info = await engine.getContainer(name).inspect(callOptions(signal));
    return info.Name === `/${name}` ? info : undefined;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

export async function findImage(
  engine: Docker,
  ref: string,
  signal?: AbortSignal,
): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await abortable(engine.getImage(ref).inspect(), signal);
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** Networks by exact name (the API's name filter matches substrings). */
export async function findNetwork(
  engine: Docker,
  name: string,
  signal?: AbortSignal,
): Promise<Docker.NetworkInspectInfo | undefined> {
  const list = await engine.listNetworks({ filters: { name: [name] }, ...callOptions(signal) });
  return list.find((n) => n.Name === name);
}

/** Volume names are matched exactly by the engine (no id prefixes). */
export async function findVolume(
  engine: Docker,
  name: string,
  signal?: AbortSignal,
): Promise<Docker.VolumeInspectInfo | undefined> {
  try {
    return await engine.getVolume(name).inspect(callOptions(signal));
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}
