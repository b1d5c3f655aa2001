import { Context } from '@temporalio/activity';

/**
 * What a remote call needs from the running activity: its cancellation signal (so a cancelled
 * activity stops the remote command) and a heartbeat (so a long command reports it is alive and
 * can be told it was cancelled). Outside an activity (benchmarks, scripts) both are absent; a
 * local activity (the patch roll's short steps) has no heartbeat: Temporal would only log a
 * warning for each one.
 */
export function activityIO(): { signal?: AbortSignal; onActivity?: () => void } {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return {};
  }
  if (ctx.info.isLocal) return { signal: ctx.cancellationSignal };
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
  if (ctx.info.isLocal) return work();
  const timer = setInterval(() => ctx!.heartbeat(), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
