import { Context } from '@temporalio/activity';

/**
 * What a remote call needs from the running activity: its cancellation signal (so a cancelled
 * activity stops the remote command) and a heartbeat (so a long command reports it is alive and
 * can be told it was cancelled). Outside an activity (benchmarks, scripts) both are absent.
 */
export function activityIO(): { signal?: AbortSignal; onActivity?: () => void } {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return {};
  }
  return { signal: ctx.cancellationSignal, onActivity: () => ctx.heartbeat() };
}

/** Heartbeat every few seconds while `work` runs (for steps that are quiet for long stretches). */
export async function withHeartbeat<T>(work: () => Promise<T>, everyMs = 5000): Promise<T> {
  let ctx: Context | undefined;
  try {
    ctx = Context.current();
  } catch {
    return work();
  }
  const timer = setInterval(() => ctx!.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
