import { rootMessage } from './input';

/**
 * Every one of `steps` at once; wait for all of them (never leave one running behind a failure),
 * then throw the first failure.
 */
export async function allOrFirstFailure<T>(steps: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/**
 * Run `fn` on every host at once and wait for all of them (never leave one running behind a
 * failure: what comes next, a rollback, must not race it); throw the first failure, naming its host.
 */
export async function onEveryHost(hosts: string[], fn: (host: string) => Promise<unknown>): Promise<void> {
  const results = await Promise.allSettled(hosts.map((h) => fn(h)));
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    const reason = (results[failed] as PromiseRejectedResult).reason as unknown;
    const others = results.filter((r) => r.status === 'rejected').length - 1;
    throw new HostStepFailed(hosts[failed]!, reason, others);
  }
}

/** A step of onEveryHost failed: on `host` (the first that failed), and on `others` more. */
export class HostStepFailed extends Error {
  override readonly name = 'HostStepFailed';
  constructor(
    readonly host: string,
    reason: unknown,
    others: number,
  ) {
    super(`${host}: ${rootMessage(reason)}${others ? ` (and ${others} other host(s))` : ''}`, {
      cause: reason instanceof Error ? reason : undefined,
    });
  }
}
