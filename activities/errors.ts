import { ApplicationFailure } from '@temporalio/common';

/**
 * Every failure an activity raises is an ApplicationFailure with one of these types, so a workflow
 * (and an ops person reading the Web UI) can tell what went wrong and whether a retry can help.
 */
export const FailureType = {
  /** The host did not answer (TCP refused, timed out, connection dropped): retry. */
  HostUnreachable: 'HostUnreachable',
  /** The host refused our key: retrying will not help. */
  AuthFailed: 'AuthFailed',
  /** The host's key is not the pinned one: a possible impostor, never retried. */
  HostKeyMismatch: 'HostKeyMismatch',
  /** A remote command exited non-zero: retried, unless the caller knows better. */
  CommandFailed: 'CommandFailed',
  /** A remote command ran past its timeout and was stopped: retry. */
  CommandTimeout: 'CommandTimeout',
  /** Input that can never succeed (bad name, unknown host): never retried. */
  InvalidInput: 'InvalidInput',
  /** The world is not in a state the operation can accept (e.g. a name used by someone else). */
  Conflict: 'Conflict',
  /** A health check did not pass in time: retry. */
  Unhealthy: 'Unhealthy',
  /** The Docker engine answered with an error. */
  DockerError: 'DockerError',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Types a retry can never fix; workflows list these in their retry policies too. */
export const NON_RETRYABLE: readonly FailureType[] = [
  FailureType.AuthFailed,
  FailureType.HostKeyMismatch,
  FailureType.InvalidInput,
  FailureType.Conflict,
];

export function failure(
  type: FailureType,
  message: string,
  details?: Record<string, unknown>,
  cause?: Error,
) {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: NON_RETRYABLE.includes(type),
    details: details ? [details] : undefined,
    cause,
  });
}

/**
 * The failure with `host` in its details (the host it happened on: how a failed operation names
 * it), when it does not name one yet. A failure naming a host already is returned as it is.
 */
export function withHost(err: ApplicationFailure, host: string): ApplicationFailure {
  const details = err.details?.[0];
  const own = details && typeof details === 'object' ? (details as Record<string, unknown>) : {};
  if (typeof own.host === 'string') return err;
  return ApplicationFailure.create({
    type: err.type ?? undefined,
    message: err.message,
    nonRetryable: err.nonRetryable ?? undefined,
    details: [{ ...own, host }, ...(err.details?.slice(1) ?? [])],
    cause: err.cause,
  });
}

export function isFailureOfType(err: unknown, type: FailureType): err is ApplicationFailure {
  return err instanceof ApplicationFailure && err.type === type;
}
