import { ApplicationFailure } from '@temporalio/common';
import { failure, FailureType, withHost } from '../errors';

/**
 * Turning what dockerode throws into the platform's failures. dockerode reports an API error as an
 * Error with `statusCode` and the engine's JSON body in `json`; a transport problem as a plain
 * socket error (or, from our SSH agent, an ApplicationFailure already).
 */

/** How long one ordinary API call (inspect, create, start...) may take before we give up on it. */
export const CALL_TIMEOUT_MS = 60_000;

interface ModemError extends Error {
  statusCode?: number;
  json?: unknown;
  code?: string;
}

/** The HTTP status of a Docker API error, or undefined for a transport error. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as ModemError | undefined)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** The engine's own message for an API error ("No such container: x"), else the error's. */
export function engineMessage(err: unknown): string {
  const json = (err as ModemError | undefined)?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string')
    return (json as { message: string }).message;
  if (Buffer.isBuffer(json) && json.length) return json.toString('utf8').trim().slice(0, 500);
  return err instanceof Error ? err.message : String(err);
}

/**
 * Options for one API call: it is abandoned when the activity is cancelled or after `timeoutMs`
 * (so a wedged engine fails the attempt, and the retry policy decides, instead of hanging it).
 */
export function callOptions(signal?: AbortSignal, timeoutMs = CALL_TIMEOUT_MS): { abortSignal: AbortSignal } {
  const timeout = AbortSignal.timeout(timeoutMs);
  return { abortSignal: signal ? AbortSignal.any([signal, timeout]) : timeout };
}

/** For the few dockerode calls that take no abortSignal (image inspect, image get). */
export function abortable<T>(
  work: Promise<T>,
  signal?: AbortSignal,
  timeoutMs = CALL_TIMEOUT_MS,
): Promise<T> {
  const { abortSignal } = callOptions(signal, timeoutMs);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortSignal.reason);
    if (abortSignal.aborted) return onAbort();
    abortSignal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        abortSignal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        abortSignal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * The failure for an error met while doing `what` on `host`. A cancellation is passed through as
 * is (Temporal reports the activity cancelled); our own failures pass through, naming the host.
 */
export function dockerFailure(host: string, what: string, err: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('cancelled');
  if (err instanceof ApplicationFailure) return withHost(err, host);
  const status = statusOf(err);
  if (status !== undefined)
    return failure(
      FailureType.DockerError,
      `${what} on ${host}: the Docker engine answered ${status}: ${engineMessage(err)}`,
      { host, statusCode: status },
    );
  const e = err as ModemError;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError')
    return failure(FailureType.DockerError, `${what} on ${host}: no answer from the Docker engine in time`, {
      host,
    });
  const message = err instanceof Error ? err.message : String(err);
  // socket hang up, ECONNRESET, EPIPE: the SSH channel (or the connection under it) went away
  return failure(
    FailureType.HostUnreachable,
    `${what} on ${host}: lost the connection to the Docker engine: ${message}`,
    { host, code: e?.code },
  );
}

/** Run one operation, turning whatever it throws into a failure naming the host and the operation. */
export async function dockerOp<T>(
  host: string,
  what: string,
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw dockerFailure(host, what, err, signal);
  }
}
