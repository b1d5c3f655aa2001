import { z } from 'zod';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import {
  dropDatabase,
  dropUser,
  ensureDatabase,
  EnsureUserInput,
  ensureUser,
  rotatePassword,
  runSql,
  tableRowCounts,
} from './admin';
import { dbName, dbPassword, dbUser, hostName, snapshotName, validate } from './names';
import { restoreSnapshot, snapshotDatabase } from './snapshot';

/**
 * The MariaDB activities: each takes one plain JSON object, validated here (bad input is an
 * InvalidInput failure, never retried) before anything reaches a host, and the host must be one of
 * the inventory's DB hosts. Why each is safe to run twice is said on the function it calls.
 *
 * Passwords arrive as activity arguments for now, so they are in the workflow's history until a
 * payload codec encrypts it; nothing here logs them or puts them in a failure.
 */

const OnDbHost = z.strictObject({ host: hostName });
const DbInput = OnDbHost.extend({ db: dbName });
const UserInput = OnDbHost.extend({ user: dbUser });
const EnsureUserActivityInput = OnDbHost.extend(EnsureUserInput.shape);
const RotateInput = UserInput.extend({ password: dbPassword });
const RunSqlInput = DbInput.extend({ sql: z.string().min(1).max(1_000_000) });
const SnapshotInput = DbInput.extend({ name: snapshotName });

export function makeDatabaseActivities(fleet: Fleet) {
  const pool = fleet.pool;

  function parse<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
    const value = validate(schema, input, what) as z.output<T> & { host: string };
    if (!pool.host(value.host).roles.includes('db'))
      throw failure(FailureType.InvalidInput, `host ${value.host} is not a DB host`, { host: value.host });
    return value;
  }

  return {
    /** Create the database (utf8mb4) if absent. */
    ensureDatabase: async (input: z.input<typeof DbInput>) => {
      const { host, db } = parse(DbInput, input, 'ensureDatabase input');
      return ensureDatabase(pool, host, db);
    },
    /** The database's user, from exactly these hosts, with this password and ALL on that database. */
    ensureDatabaseUser: async (input: z.input<typeof EnsureUserActivityInput>) => {
      const { host, ...user } = parse(EnsureUserActivityInput, input, 'ensureDatabaseUser input');
      return ensureUser(pool, host, user);
    },
    /** A new password on every account of the user. */
    rotateDatabasePassword: async (input: z.input<typeof RotateInput>) => {
      const { host, user, password } = parse(RotateInput, input, 'rotateDatabasePassword input');
      return rotatePassword(pool, host, user, password);
    },
    dropDatabase: async (input: z.input<typeof DbInput>) => {
      const { host, db } = parse(DbInput, input, 'dropDatabase input');
      return dropDatabase(pool, host, db);
    },
    dropDatabaseUser: async (input: z.input<typeof UserInput>) => {
      const { host, user } = parse(UserInput, input, 'dropDatabaseUser input');
      return dropUser(pool, host, user);
    },
    /** SQL (sent on stdin) run as root in the database; its result rows. */
    runSql: async (input: z.input<typeof RunSqlInput>) => {
      const { host, db, sql } = parse(RunSqlInput, input, 'runSql input');
      return { rows: await runSql(pool, host, db, sql) };
    },
    /** Exact row count of every table, in one consistent read. */
    tableRowCounts: async (input: z.input<typeof DbInput>) => {
      const { host, db } = parse(DbInput, input, 'tableRowCounts input');
      return tableRowCounts(pool, host, db);
    },
    /** Dump the database to /srv/qm/snapshots/<db>/<name>.sql.gz on its host (kept if already there). */
    snapshotDatabase: async (input: z.input<typeof SnapshotInput>) => {
      const { host, db, name } = parse(SnapshotInput, input, 'snapshotDatabase input');
      return snapshotDatabase(pool, { host, db, name });
    },
    /** Make the database exactly that snapshot. */
    restoreDatabaseSnapshot: async (input: z.input<typeof SnapshotInput>) => {
      const { host, db, name } = parse(SnapshotInput, input, 'restoreDatabaseSnapshot input');
      return restoreSnapshot(pool, { host, db, name });
    },
  };
}
