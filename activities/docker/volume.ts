import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { volumeCreateOptions } from './commands';
import { callOptions, dockerOp, engineMessage, statusOf } from './failures';
import { findVolume } from './lookup';

type IO = ReturnType<typeof activityIO>;

/**
 * Make a local named volume exist on the host. Idempotent: found by its (exact) name first, so a
 * second run is `unchanged`; created only when absent. The engine's own create returns the existing
 * volume for a name that exists, so even a race between two creations cannot fail or duplicate it.
 * Labels of an existing volume are not reconciled (Docker cannot change them).
 */
export async function ensureVolume(
  fleet: Fleet,
  host: string,
  input: { name: string; labels?: Record<string, string> },
  io: IO = activityIO(),
): Promise<{ name: string; action: 'created' | 'unchanged' }> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `ensure volume ${input.name}`, signal, async () => {
    if (await findVolume(engine, input.name, signal)) return { name: input.name, action: 'unchanged' };
    await engine.createVolume({
      ...volumeCreateOptions({ name: input.name, labels: input.labels ?? {} }),
      ...callOptions(signal),
    });
    return { name: input.name, action: 'created' };
  });
}

/**
 * Remove a named volume, and the data in it: callers ask for this explicitly, by name. Idempotent:
 * a volume that is not there is `absent`. One still used by a container (409) is a retryable
 * DockerError: it can succeed once the container is removed.
 */
export async function removeVolume(
  fleet: Fleet,
  host: string,
  name: string,
  io: IO = activityIO(),
): Promise<{ result: 'removed' | 'absent' }> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `remove volume ${name}`, signal, async () => {
    try {
      await engine.getVolume(name).remove(callOptions(signal));
      return { result: 'removed' };
    } catch (err) {
      if (statusOf(err) === 404) return { result: 'absent' };
      if (statusOf(err) === 409)
        throw failure(
          FailureType.DockerError,
          `volume ${name} on ${host} is in use: ${engineMessage(err)}; remove its containers first`,
          { host, name },
        );
      throw err;
    }
  });
}
