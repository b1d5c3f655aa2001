import type Docker from 'dockerode';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { dockerOp } from './failures';
import { findContainer } from './lookup';

type IO = ReturnType<typeof activityIO>;

/**
 * Inspect is cheap (a few ms through the pool), and a container that comes up quickly should not
 * wait out a long poll: every 100 ms for the first 5 s, then every 500 ms.
 */
const FAST_POLL_MS = 100;
const FAST_POLL_FOR_MS = 5_000;
const POLL_MS = 500;

export interface WaitHealthyResult {
  id: string;
  /** `running` for a container without a healthcheck. */
  status: 'healthy' | 'running';
  waitedMs: number;
}

/**
 * Wait until a container is healthy (its healthcheck passes), or running if it has none, polling
 * inspect and heartbeating while it waits. Read-only, so safe to run any number of times.
 *
 * Times out as Unhealthy (retryable) with what an operator needs: the state, the failing streak and
 * the last health check outputs. A container that exited and will not be restarted (restart policy
 * `no`), or that does not exist, fails at once rather than at the deadline.
 */
export async function waitHealthy(
  fleet: Fleet,
  host: string,
  name: string,
  timeoutMs: number,
  io: IO = activityIO(),
): Promise<WaitHealthyResult> {
  const engine = fleet.docker.engine(host);
  const { signal, onActivity } = io;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: Docker.ContainerInspectInfo | undefined;
  for (;;) {
    last = await dockerOp(host, `inspect container ${name}`, signal, () =>
      findContainer(engine, name, signal),
    );
    onActivity?.();
    if (!last)
      throw failure(FailureType.Unhealthy, `container ${name} does not exist on ${host}`, { host, name });
    const { State: state } = last;
    const health = state.Health?.Status;
    if ((health === undefined || health === 'none') && state.Running)
      return { id: last.Id, status: 'running', waitedMs: Date.now() - started };
    if (health === 'healthy' && state.Running)
      return { id: last.Id, status: 'healthy', waitedMs: Date.now() - started };
    const policy = last.HostConfig.RestartPolicy?.Name ?? '';
    if ((state.Status === 'exited' || state.Status === 'dead') && (policy === '' || policy === 'no'))
      throw unhealthy(host, name, last, `exited with code ${state.ExitCode} and will not be restarted`);
    const left = deadline - Date.now();
    if (left <= 0) break;
    const every = Date.now() - started < FAST_POLL_FOR_MS ? FAST_POLL_MS : POLL_MS;
    await sleep(Math.min(every, left), signal);
  }
  throw unhealthy(host, name, last, `not healthy after ${timeoutMs} ms`);
}

function unhealthy(host: string, name: string, info: Docker.ContainerInspectInfo, why: string) {
  const state = info.State;
  const log = (state.Health?.Log ?? []).slice(-3).map((l) => ({
    exitCode: l.ExitCode,
    output: l.Output.trim().slice(-500),
  }));
  const lastOutput = log.length ? `; last check: exit ${log.at(-1)!.exitCode}: ${log.at(-1)!.output}` : '';
  return failure(
    FailureType.Unhealthy,
    `container ${name} on ${host} ${why} (state ${state.Status}` +
      `${state.Health ? `, health ${state.Health.Status}, failing streak ${state.Health.FailingStreak}` : ''}` +
      `${state.OOMKilled ? ', killed for lack of memory' : ''}, restarts ${info.RestartCount})${lastOutput}`,
    {
      host,
      name,
      id: info.Id,
      state: state.Status,
      health: state.Health?.Status,
      exitCode: state.ExitCode,
      oomKilled: state.OOMKilled,
      restarts: info.RestartCount,
      log,
    },
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
