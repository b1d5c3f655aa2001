import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { networkCreateOptions } from './commands';
import { abortable, callOptions, dockerOp, engineMessage, statusOf } from './failures';
import { findNetwork } from './lookup';

type IO = ReturnType<typeof activityIO>;

export interface EnsureNetworkInput {
  name: string;
  labels?: Record<string, string>;
  /** An internal network has no route out of the host. */
  internal?: boolean;
}

/**
 * Make a bridge network of this name exist on the host.
 *
 * Idempotent: found by exact name first (`unchanged`, same id); created only when absent, and a
 * creation that loses a race to another one (409) finds the winner's. An existing network whose
 * `internal` setting differs is a Conflict: flipping it means re-creating it under its containers,
 * which is not something to do silently. Labels of an existing network are not reconciled.
 */
export async function ensureNetwork(
  fleet: Fleet,
  host: string,
  input: EnsureNetworkInput,
  io: IO = activityIO(),
): Promise<{ id: string; action: 'created' | 'unchanged' }> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  const internal = input.internal ?? false;
  return dockerOp(host, `ensure network ${input.name}`, signal, async () => {
    for (let pass = 0; ; pass++) {
      const existing = await findNetwork(engine, input.name, signal);
      if (existing) {
        if (existing.Internal !== internal)
          throw failure(
            FailureType.Conflict,
            `network ${input.name} on ${host} exists with internal=${existing.Internal}, wanted internal=${internal}`,
            { host, name: input.name, id: existing.Id },
          );
        return { id: existing.Id, action: 'unchanged' };
      }
      try {
        const network = await engine.createNetwork({
          ...networkCreateOptions({ name: input.name, labels: input.labels ?? {}, internal }),
          ...callOptions(signal),
        });
        return { id: network.id, action: 'created' };
      } catch (err) {
        if (statusOf(err) === 409 && pass === 0) continue;
        throw err;
      }
    }
  });
}

/**
 * Remove a network. Idempotent: a network that is not there (or goes away under us, 404) is
 * `absent`. One that still has containers attached is a retryable DockerError naming them: it
 * can succeed once they are removed.
 */
export async function removeNetwork(
  fleet: Fleet,
  host: string,
  name: string,
  io: IO = activityIO(),
): Promise<{ result: 'removed' | 'absent' }> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `remove network ${name}`, signal, async () => {
    const existing = await findNetwork(engine, name, signal);
    if (!existing) return { result: 'absent' };
    try {
      await engine.getNetwork(existing.Id).remove(callOptions(signal));
      return { result: 'removed' };
    } catch (err) {
      if (statusOf(err) === 404) return { result: 'absent' };
      if (statusOf(err) === 403 || statusOf(err) === 409) {
        const attached = await abortable(engine.getNetwork(existing.Id).inspect(), signal)
          .then((n: { Containers?: Record<string, { Name: string }> }) =>
            Object.values(n.Containers ?? {}).map((c) => c.Name),
          )
          .catch(() => [] as string[]);
        throw failure(
          FailureType.DockerError,
          `network ${name} on ${host} is still in use (${attached.join(', ') || engineMessage(err)}): remove its containers first`,
          { host, name, attached },
        );
      }
      throw err;
    }
  });
}
