import { createHash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import { ensureDatabase } from './admin';
import { dumpPipelineArgv, restorePipelineArgv, type GzipLevel } from './commands';
import { dbName, validate } from './names';

/**
 * Streamed dumps and restores between a DB host and a local stream. Bytes flow through with
 * backpressure (never whole in memory); size and SHA-256 are computed on the way.
 */

export interface StreamedDump {
  /** Bytes of gzip. */
  bytes: number;
  /** SHA-256 (hex) of those bytes. */
  sha256: string;
}

export interface DumpOptions {
  /** gzip level on the host (default 6). */
  level?: GzipLevel;
  /** Stop the remote dump after this long (default 4 h). */
  timeoutMs?: number;
  /** Cancels the dump (defaults to the running activity's cancellation). */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT = 4 * 60 * 60_000;

/** Counts and hashes what passes through. */
class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(private readonly onChunk?: () => void) {
    super();
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

function ioWith(o: { signal?: AbortSignal }, local: AbortController) {
  const io = activityIO();
  const outer = o.signal ?? io.signal;
  return {
    onActivity: io.onActivity,
    signal: outer ? AbortSignal.any([outer, local.signal]) : local.signal,
  };
}

/**
 * `mysqldump --single-transaction ... db | gzip` on the host under pipefail (a dump that fails
 * midway fails here, whatever gzip had written), streamed into `destination`, which is ended when
 * the dump is complete and destroyed if it fails. If the destination fails (disk full), the remote
 * dump is stopped. Read-only on the server, so safe to repeat.
 */
export async function dumpDatabase(
  pool: SshPool,
  host: string,
  db: string,
  destination: Writable,
  o: DumpOptions = {},
): Promise<StreamedDump> {
  validate(dbName, db, 'database name');
  const meter = new Meter();
  const local = new AbortController();
  const written = pipeline(meter, destination);
  written.catch((err: unknown) => local.abort(err));
  try {
    await pool.exec(host, dumpPipelineArgv(db, o.level), {
      stdout: meter,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT,
      ...ioWith(o, local),
    });
  } catch (err) {
    // decided before we end the pipeline ourselves (which makes it fail with "premature close")
    const destinationFailed = local.signal.aborted;
    meter.destroy();
    await written.catch(() => undefined);
    if (destinationFailed) throw destinationFailure(host, db, local.signal.reason);
    throw err;
  }
  meter.end();
  try {
    await written;
  } catch (err) {
    throw destinationFailure(host, db, err);
  }
  return { bytes: meter.bytes, sha256: meter.digest() };
}

function destinationFailure(host: string, db: string, err: unknown) {
  const message = err instanceof Error ? err.message : String(err);
  return failure(FailureType.CommandFailed, `writing the dump of ${db} from ${host} failed: ${message}`, {
    host,
    db,
  });
}

/**
 * Load a gzipped dump (as dumpDatabase makes) from `source` into `db`, creating the database if
 * absent: `gunzip -c | mariadb db` on the host under pipefail. A dump drops and recreates each of
 * its tables, so loading it again gives the same tables; tables it does not hold are left alone
 * (restoreSnapshot gives the exact state). Returns size and SHA-256 of what was sent.
 */
export async function restoreDatabase(
  pool: SshPool,
  host: string,
  db: string,
  source: Readable,
  o: Omit<DumpOptions, 'level'> = {},
): Promise<StreamedDump> {
  validate(dbName, db, 'database name');
  await ensureDatabase(pool, host, db);
  const local = new AbortController();
  const io = ioWith(o, local);
  // the client writes nothing while it loads: heartbeat on what we send instead
  const meter = new Meter(io.onActivity);
  let sourceError: unknown;
  const read = pipeline(source, meter).catch((err: unknown) => {
    sourceError = err;
    local.abort(err);
  });
  try {
    await pool.exec(host, restorePipelineArgv(db), {
      stdin: meter,
      timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT,
      ...io,
    });
  } catch (err) {
    meter.destroy();
    await read;
    if (sourceError !== undefined) {
      const message = sourceError instanceof Error ? sourceError.message : String(sourceError);
      throw failure(FailureType.CommandFailed, `reading the dump to restore into ${db} failed: ${message}`, {
        host,
        db,
      });
    }
    throw err;
  }
  await read;
  return { bytes: meter.bytes, sha256: meter.digest() };
}
