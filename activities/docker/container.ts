import type Docker from 'dockerode';
import { SPEC_HASH_LABEL, MAX_STOP_TIMEOUT_SEC, type ContainerSpec } from '../../schema/container';
import { activityIO, withHeartbeat } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { containerCreateOptions } from './commands';
import { callOptions, CALL_TIMEOUT_MS, dockerOp, engineMessage, statusOf } from './failures';
import { findContainer, findImage } from './lookup';

type IO = ReturnType<typeof activityIO>;

export type EnsureContainerAction = 'created' | 'replaced' | 'started' | 'unchanged';
export interface EnsureContainerResult {
  id: string;
  action: EnsureContainerAction;
}

/** A stop waits up to the container's stop timeout, then SIGKILL: give the call that much more. */
const STOP_CALL_TIMEOUT_MS = MAX_STOP_TIMEOUT_SEC * 1000 + CALL_TIMEOUT_MS;

/** Containers this orchestrator created carry their spec's hash; anything else is not ours to touch. */
export function isManaged(info: Docker.ContainerInspectInfo): boolean {
  return Boolean(info.Config.Labels?.[SPEC_HASH_LABEL]);
}

/** Quartermaster only ever changes containers it created: anything else is a Conflict. */
function refuseForeign(host: string, info: Docker.ContainerInspectInfo, verb: string) {
  if (isManaged(info)) return;
  const name = info.Name.replace(/^\//, '');
  throw failure(
    FailureType.Conflict,
    `${host} has a container named ${name} that Quartermaster did not create: refusing to ${verb} it`,
    { host, name, id: info.Id },
  );
}

/**
 * Make the container `spec.name` on `host` be `spec`, running.
 *
 * Idempotent: the container is found by its name, and its qm.spec-hash label (and the id of the
 * image its tag points to now) say whether it already is this spec. The same spec a second time
 * finds it and returns `unchanged` with the same id; a stopped one is started; a different spec
 * (or a re-pointed tag) replaces it: graceful stop, remove, create, start. A run cut short at any
 * step is finished by the next: a replaced container that was removed but not yet re-created is
 * simply absent, and is created. Anonymous volumes of a replaced container are kept (data is only
 * ever deleted on an explicit removeContainer). A container of that name that we did not create
 * is a Conflict and is left alone.
 *
 * A replace has a short gap in service (the old container holds the ports until it is gone): a
 * switch without one is a workflow's job (a second container under another name, then the proxy).
 */
export async function ensureContainer(
  fleet: Fleet,
  host: string,
  spec: ContainerSpec,
  io: IO = activityIO(),
): Promise<EnsureContainerResult> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `ensure container ${spec.name}`, signal, async () => {
    const image = await findImage(engine, spec.image, signal);
    if (!image)
      throw failure(
        FailureType.DockerError,
        `image ${spec.image} is not on ${host}: ensureImage must run before ensureContainer`,
        { host, image: spec.image },
      );
    const create = containerCreateOptions(spec);
    const hash = create.Labels![SPEC_HASH_LABEL]!;

    // Two passes at most: the second only after losing a race to create the same name.
    for (let pass = 0; ; pass++) {
      const current = await findContainer(engine, spec.name, signal);
      if (current) {
        refuseForeign(host, current, 'replace');
        const same = current.Config.Labels[SPEC_HASH_LABEL] === hash && current.Image === image.Id;
        if (same && current.State.Status !== 'dead') {
          const action = await startIfStopped(engine, current, signal);
          return { id: current.Id, action };
        }
        await stopAndRemove(engine, current.Id, false, signal);
      }
      try {
        const id = await createAndStart(engine, create, signal);
        return { id, action: current ? 'replaced' : 'created' };
      } catch (err) {
        if (statusOf(err) === 409 && pass === 0) continue; // someone created it meanwhile: look again
        throw err;
      }
    }
  });
}

async function startIfStopped(
  engine: Docker,
  info: Docker.ContainerInspectInfo,
  signal?: AbortSignal,
): Promise<EnsureContainerAction> {
  const container = engine.getContainer(info.Id);
  switch (info.State.Status) {
    case 'running':
    case 'restarting': // its restart policy is at work; waitHealthy tells whether it comes up
      return 'unchanged';
    case 'paused':
      await container.unpause(callOptions(signal));
      return 'started';
    case 'removing':
      throw failure(FailureType.DockerError, `container ${info.Name.slice(1)} is being removed; try again`, {
        id: info.Id,
      });
    default: // created, exited
      await startTolerant(container, signal);
      return 'started';
  }
}

async function createAndStart(
  engine: Docker,
  create: Docker.ContainerCreateOptions,
  signal?: AbortSignal,
): Promise<string> {
  const { name, ...body } = create;
  // name in the query, the rest (env values included) in the body only, never in the URL
  const container = await engine.createContainer({
    _query: { name },
    _body: body,
    ...callOptions(signal),
  } as Docker.ContainerCreateOptions);
  await startTolerant(container, signal);
  return container.id;
}

/** Start; 304 (already started) is success. */
async function startTolerant(container: Docker.Container, signal?: AbortSignal) {
  try {
    await container.start(callOptions(signal));
  } catch (err) {
    if (statusOf(err) !== 304) throw err;
  }
}

/** Stop gracefully (304 already stopped and 404 gone are fine), then remove (404 is fine). */
async function stopAndRemove(engine: Docker, id: string, removeVolumes: boolean, signal?: AbortSignal) {
  const container = engine.getContainer(id);
  await withHeartbeat(() => stopTolerant(container, undefined, signal));
  await removeTolerant(container, removeVolumes, signal);
}

async function stopTolerant(
  container: Docker.Container,
  timeoutSec: number | undefined,
  signal?: AbortSignal,
): Promise<'stopped' | 'already-stopped' | 'absent'> {
  try {
    await container.stop({ t: timeoutSec, ...callOptions(signal, STOP_CALL_TIMEOUT_MS) });
    return 'stopped';
  } catch (err) {
    if (statusOf(err) === 304) return 'already-stopped';
    if (statusOf(err) === 404) return 'absent';
    throw err;
  }
}

async function removeTolerant(
  container: Docker.Container,
  removeVolumes: boolean,
  signal?: AbortSignal,
): Promise<'removed' | 'absent'> {
  try {
    // force: a restart policy may have started it again between our stop and this remove
    await container.remove({ force: true, v: removeVolumes, ...callOptions(signal) });
    return 'removed';
  } catch (err) {
    if (statusOf(err) === 404) return 'absent';
    // "removal of container ... is already in progress": someone else is doing it; wait for it
    if (statusOf(err) === 409 && /already in progress/i.test(engineMessage(err))) {
      await waitGone(container, signal);
      return 'removed';
    }
    throw err;
  }
}

async function waitGone(container: Docker.Container, signal?: AbortSignal) {
  const deadline = Date.now() + CALL_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      await container.inspect(callOptions(signal));
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw failure(FailureType.DockerError, `container ${container.id} is still being removed`, {
    id: container.id,
  });
}

export interface StopContainerResult {
  /** `already-stopped` and `absent` are the outcomes of a repeated stop: not errors. */
  result: 'stopped' | 'already-stopped' | 'absent';
}

/**
 * Stop a container gracefully: SIGTERM, then SIGKILL after `timeoutSec` (the container's own stop
 * timeout when absent). Idempotent: an already stopped container (304) and a missing one (404) are
 * outcomes, not errors, so a retry after a lost reply or a second stop succeeds. A container of
 * that name we did not create is a Conflict and is left alone.
 */
export async function stopContainer(
  fleet: Fleet,
  host: string,
  name: string,
  opts: { timeoutSec?: number } = {},
  io: IO = activityIO(),
): Promise<StopContainerResult> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `stop container ${name}`, signal, async () => {
    const current = await findContainer(engine, name, signal);
    if (!current) return { result: 'absent' };
    refuseForeign(host, current, 'stop');
    const container = engine.getContainer(current.Id);
    return { result: await withHeartbeat(() => stopTolerant(container, opts.timeoutSec, signal)) };
  });
}

export interface RemoveContainerResult {
  result: 'removed' | 'absent';
}

/**
 * Stop (gracefully) and remove a container we created; its anonymous volumes too only when
 * `removeVolumes` (named volumes are never touched: removeVolume is explicit). Idempotent: a
 * missing container is `absent`, and a removal already under way is waited for. A container of that
 * name we did not create is a Conflict and is left alone.
 */
export async function removeContainer(
  fleet: Fleet,
  host: string,
  name: string,
  opts: { removeVolumes?: boolean } = {},
  io: IO = activityIO(),
): Promise<RemoveContainerResult> {
  const engine = fleet.docker.engine(host);
  const { signal } = io;
  return dockerOp(host, `remove container ${name}`, signal, async () => {
    const current = await findContainer(engine, name, signal);
    if (!current) return { result: 'absent' };
    refuseForeign(host, current, 'remove');
    const container = engine.getContainer(current.Id);
    await withHeartbeat(() => stopTolerant(container, undefined, signal));
    return { result: await removeTolerant(container, opts.removeVolumes ?? false, signal) };
  });
}
