import { activityIO, withHeartbeat } from '../context';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import {
  restoreSnapshotArgv,
  snapshotArgv,
  snapshotPaths,
  SNAPSHOT_CORRUPT,
  SNAPSHOT_MISSING,
  type GzipLevel,
} from './commands';
import { dbName, snapshotName, validate } from './names';

/**
 * Snapshots kept on the DB host itself (/srv/qm/snapshots/<db>/<name>.sql.gz and a .sha256 beside
 * it): what a deploy takes before it migrates and what a rollback or a deprovision goes back to.
 * The dump never leaves the host, so a snapshot costs no network transfer.
 */

export interface Snapshot {
  host: string;
  db: string;
  name: string;
  path: string;
  sha256: string;
  bytes: number;
  /** False when a complete snapshot of that name was already there (and was left as it was). */
  created: boolean;
}

const DEFAULT_TIMEOUT = 4 * 60 * 60_000;

/**
 * Dump `db` to its snapshot file on the host. Safe twice: a snapshot of that name that matches its
 * checksum is kept (a retry after success must not overwrite it with a later state), and one left
 * half-written by a crash is a temporary file that is never renamed into place.
 */
export async function snapshotDatabase(
  pool: SshPool,
  input: { host: string; db: string; name: string; level?: GzipLevel; timeoutMs?: number },
): Promise<Snapshot> {
  const { host, db, name } = input;
  validate(dbName, db, 'database name');
  validate(snapshotName, name, 'snapshot name');
  const r = await withHeartbeat(() =>
    pool.exec(host, snapshotArgv(db, name, input.level), {
      timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT,
      signal: activityIO().signal,
    }),
  );
  const m = /^(existing|created) ([0-9a-f]{64}) (\d+)$/m.exec(r.stdout);
  if (!m)
    throw failure(FailureType.CommandFailed, `${host}: the snapshot script printed no result`, {
      host,
      stdout: r.stdout.slice(-500),
    });
  return {
    host,
    db,
    name,
    path: snapshotPaths(db, name).file,
    sha256: m[2]!,
    bytes: Number(m[3]),
    created: m[1] === 'created',
  };
}

/**
 * Make `db` exactly the snapshot: the file is checked against its checksum first (a missing or
 * damaged snapshot is a Conflict and the database is not touched), then the database is dropped,
 * recreated and loaded. Safe twice: every run ends in the same state. The caller stops the site's
 * writes first; grants on the database survive (MariaDB keeps them across DROP DATABASE).
 */
export async function restoreSnapshot(
  pool: SshPool,
  input: { host: string; db: string; name: string; timeoutMs?: number },
): Promise<{ host: string; db: string; name: string; sha256: string }> {
  const { host, db, name } = input;
  validate(dbName, db, 'database name');
  validate(snapshotName, name, 'snapshot name');
  const path = snapshotPaths(db, name).file;
  const r = await withHeartbeat(() =>
    pool.exec(host, restoreSnapshotArgv(db, name), {
      timeoutMs: input.timeoutMs ?? DEFAULT_TIMEOUT,
      signal: activityIO().signal,
      check: false,
    }),
  );
  if (r.code === SNAPSHOT_MISSING)
    throw failure(FailureType.Conflict, `${host}: there is no snapshot ${path}`, { host, db, name });
  if (r.code === SNAPSHOT_CORRUPT)
    throw failure(FailureType.Conflict, `${host}: snapshot ${path} does not match its checksum`, {
      host,
      db,
      name,
    });
  if (r.code !== 0)
    throw failure(
      FailureType.CommandFailed,
      `${host}: restoring ${path} into ${db} exited ${r.code ?? 'by signal ' + r.signal}: ${r.stderr.trim().split('\n').pop() ?? ''}`,
      { host, db, name, code: r.code, stderr: r.stderr.slice(-2000) },
    );
  return { host, db, name, sha256: r.stdout.trim().split('\n').pop() ?? '' };
}
