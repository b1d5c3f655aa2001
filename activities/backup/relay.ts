import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { activityIO } from '../context';
import type { ExecResult, SshPool } from '../ssh/pool';

/**
 * One remote command's stdout streamed into another's stdin, through this process: the bytes flow
 * with backpressure (the slower side paces the faster one; nothing is held whole in memory), and
 * their size and SHA-256 are computed on the way. Either side failing stops the other: a failed
 * source never looks like a finished stream to the sink (its stdin is not ended, the sink is
 * killed), which is why sinks commit only on the worker's word (see RECEIVE_SCRIPT).
 */

export interface RemoteCommand {
  host: string;
  argv: string[];
}

export interface Relayed {
  bytes: number;
  sha256: string;
  source: ExecResult;
  sink: ExecResult;
}

/** Counts and hashes what passes through; `onChunk` heartbeats the activity. */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(private readonly onChunk?: () => void) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null, d?: Buffer) => void) {
    this.onChunk?.();
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

const DEFAULT_TIMEOUT = 4 * 60 * 60_000;

export async function relay(
  pool: SshPool,
  source: RemoteCommand,
  sink: RemoteCommand,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Relayed> {
  const io = activityIO();
  const outer = o.signal ?? io.signal;
  const local = new AbortController();
  const signal = outer ? AbortSignal.any([outer, local.signal]) : local.signal;
  const meter = new Meter(io.onActivity);
  meter.on('error', () => undefined); // reported by whichever exec it breaks, never unhandled
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT;

  let failedFirst: 'source' | 'sink' | undefined;
  const sinking = pool.exec(sink.host, sink.argv, {
    stdin: meter,
    signal,
    timeoutMs,
    onActivity: io.onActivity,
  });
  const sourcing = pool.exec(source.host, source.argv, {
    stdout: meter,
    signal,
    timeoutMs,
    onActivity: io.onActivity,
  });
  sourcing.then(
    () => meter.end(), // the whole stream is through: only now does the sink see its end
    (err: unknown) => {
      failedFirst ??= 'source';
      meter.destroy(err instanceof Error ? err : new Error(String(err)));
      local.abort(err);
    },
  );
  sinking.catch((err: unknown) => {
    failedFirst ??= 'sink';
    // the meter no longer drains into the sink: destroyed, it stops the source's exec, which would
    // otherwise wait forever for a drain (and keep heartbeating) once the source was stopped
    meter.destroy(err instanceof Error ? err : new Error(String(err)));
    local.abort(err);
  });
  const [src, snk] = await Promise.allSettled([sourcing, sinking]);
  if (src.status === 'fulfilled' && snk.status === 'fulfilled')
    return { bytes: meter.bytes, sha256: meter.digest(), source: src.value, sink: snk.value };
  // report the cause, not the side that was stopped because of it
  if (outer?.aborted) throw outer.reason;
  if (failedFirst === 'sink' && snk.status === 'rejected') throw snk.reason;
  if (src.status === 'rejected') throw src.reason;
  throw (snk as PromiseRejectedResult).reason;
}
