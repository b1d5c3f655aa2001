import { z } from 'zod';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import { runSqlScript } from './client';
import {
  dropDatabaseSql,
  dropUserSql,
  ensureDatabaseSql,
  ensureUserSql,
  grantDatabase,
  listTablesSql,
  rowCountsSql,
  setPasswordSql,
  userStateSql,
} from './commands';
import { dbFromHost, dbName, dbPassword, dbUser, validate } from './names';
import { nativePasswordHash } from './password';

/**
 * Databases and accounts on a DB host. Each operation is check-then-act or create-if-absent, so a
 * retry (or a second run by a later workflow) converges on the same state instead of failing.
 */

export interface EnsureDatabaseResult {
  db: string;
  created: boolean;
  charset: string;
  collation: string;
}

/**
 * CREATE DATABASE IF NOT EXISTS (utf8mb4): a second run finds it and changes nothing, and an
 * existing database keeps its character set (reported, not silently altered).
 */
export async function ensureDatabase(pool: SshPool, host: string, db: string): Promise<EnsureDatabaseResult> {
  validate(dbName, db, 'database name');
  const rows = await runSqlScript(pool, host, ensureDatabaseSql(db));
  const [existed, charsetRow] = [rows[0]?.[0], rows[1]];
  return { db, created: existed === '0', charset: charsetRow?.[0] ?? '', collation: charsetRow?.[1] ?? '' };
}

/** DROP DATABASE IF EXISTS: a database already gone is what we wanted. */
export async function dropDatabase(pool: SshPool, host: string, db: string): Promise<{ dropped: boolean }> {
  validate(dbName, db, 'database name');
  const before = await databaseExists(pool, host, db);
  await runSqlScript(pool, host, dropDatabaseSql(db));
  return { dropped: before };
}

export async function databaseExists(pool: SshPool, host: string, db: string): Promise<boolean> {
  const rows = await runSqlScript(pool, host, listTablesSql(db));
  return rows[0]?.[0] === '1';
}

/** What the server holds for a user name: its accounts and any privilege it has anywhere. */
export interface UserState {
  /** Hosts of the accounts 'user'@'host'. */
  accounts: string[];
  /** Privileges on databases, tables, columns, routines: [kind, host, database as stored]. */
  grants: { kind: string; host: string; db: string }[];
  /** Global privileges beyond USAGE: [host part of the grantee, privilege]. */
  globals: { host: string; privilege: string }[];
}

export async function userState(pool: SshPool, host: string, user: string): Promise<UserState> {
  const rows = await runSqlScript(pool, host, userStateSql(user));
  const state: UserState = { accounts: [], grants: [], globals: [] };
  for (const [kind = '', h = '', x = ''] of rows) {
    if (kind === 'account') state.accounts.push(h);
    else if (kind === 'global') state.globals.push({ host: h, privilege: x });
    else state.grants.push({ kind, host: h, db: x });
  }
  return state;
}

/**
 * Privileges that would make this user more than the owner of `db`. mysql.db stores the GRANT
 * pattern (`a\_b`); table, column and routine grants store the plain name.
 */
export function foreignPrivileges(state: UserState, db: string): string[] {
  const pattern = grantDatabase(db).slice(1, -1);
  const out: string[] = [];
  for (const g of state.grants) {
    const own = g.kind === 'db' ? g.db === pattern : g.db === db;
    if (!own) out.push(`${g.kind} privileges on ${JSON.stringify(g.db)} from '${g.host}'`);
  }
  for (const g of state.globals) out.push(`global ${g.privilege} from ${g.host}`);
  return out;
}

export const EnsureUserInput = z.strictObject({
  user: dbUser,
  db: dbName,
  password: dbPassword,
  fromHosts: z.array(dbFromHost).min(1).max(32).default(['%']),
});
export type EnsureUserInput = z.input<typeof EnsureUserInput>;

export interface EnsureUserResult {
  user: string;
  db: string;
  accounts: string[];
  created: string[];
  dropped: string[];
}

/**
 * Make `user` exist from exactly `fromHosts`, with `password`, holding ALL on `db`.* and nothing
 * else. Safe twice: accounts are created if absent, the password set to the same hash again (no
 * change in effect), the grant repeated (idempotent in MariaDB), and accounts from hosts no longer
 * listed are dropped. A user holding privileges anywhere else is refused (Conflict), never quietly
 * moved: a typo in a workflow must not take another site's database user.
 */
export async function ensureUser(
  pool: SshPool,
  host: string,
  input: EnsureUserInput,
): Promise<EnsureUserResult> {
  const { user, db, password, fromHosts } = validate(EnsureUserInput, input, 'database user');
  const wanted = [...new Set(fromHosts)];
  const state = await userState(pool, host, user);
  const foreign = foreignPrivileges(state, db);
  if (foreign.length)
    throw failure(
      FailureType.Conflict,
      `${host}: database user ${user} already holds ${foreign.join('; ')}: refusing to make it the user of ${db}`,
      { host, user, db, foreign },
    );
  const passwordHash = nativePasswordHash(password);
  const dropHosts = state.accounts.filter((h) => !wanted.includes(h));
  await runSqlScript(pool, host, ensureUserSql({ user, db, passwordHash, fromHosts: wanted, dropHosts }), {
    secrets: [password, passwordHash],
  });
  return {
    user,
    db,
    accounts: wanted,
    created: wanted.filter((h) => !state.accounts.includes(h)),
    dropped: dropHosts,
  };
}

/**
 * Set a new password on every account of `user`. Safe twice: the second run sets the same hash.
 * A user that does not exist is a Conflict (a retry cannot create it).
 */
export async function rotatePassword(
  pool: SshPool,
  host: string,
  user: string,
  password: string,
): Promise<{ user: string; accounts: string[] }> {
  validate(dbUser, user, 'database user');
  validate(dbPassword, password, 'password');
  const { accounts } = await userState(pool, host, user);
  if (!accounts.length)
    throw failure(FailureType.Conflict, `${host}: there is no database user ${user} to rotate`, {
      host,
      user,
    });
  const passwordHash = nativePasswordHash(password);
  await runSqlScript(pool, host, setPasswordSql(user, accounts, passwordHash), {
    secrets: [password, passwordHash],
  });
  return { user, accounts };
}

/** Drop every account of `user` (DROP USER IF EXISTS): one already gone is what we wanted. */
export async function dropUser(pool: SshPool, host: string, user: string): Promise<{ dropped: string[] }> {
  validate(dbUser, user, 'database user');
  const { accounts } = await userState(pool, host, user);
  if (accounts.length) await runSqlScript(pool, host, dropUserSql(user, accounts));
  return { dropped: accounts };
}

/**
 * Run SQL (on stdin) in `db`, as root; rows of every statement that returns some. As idempotent
 * as the SQL given: callers pass statements that are (CREATE ... IF NOT EXISTS, upserts).
 */
export async function runSql(
  pool: SshPool,
  host: string,
  db: string,
  sql: string,
  timeoutMs?: number,
): Promise<string[][]> {
  validate(dbName, db, 'database name');
  if (sql.includes('\0')) throw failure(FailureType.InvalidInput, 'SQL cannot contain a NUL byte');
  return runSqlScript(pool, host, sql, { db, timeoutMs });
}

/**
 * Exact COUNT(*) of every base table, read in one consistent snapshot (what a restore is checked
 * against). Read-only. A database that does not exist is a Conflict, not an empty map that would
 * compare equal to another empty one.
 */
export async function tableRowCounts(
  pool: SshPool,
  host: string,
  db: string,
  timeoutMs = 10 * 60_000,
): Promise<Record<string, number>> {
  validate(dbName, db, 'database name');
  const listing = await runSqlScript(pool, host, listTablesSql(db));
  if (listing[0]?.[0] !== '1')
    throw failure(FailureType.Conflict, `${host}: there is no database ${db}`, { host, db });
  const tables = listing.slice(1).map((r) => r[0]!);
  if (!tables.length) return {};
  const rows = await runSqlScript(pool, host, rowCountsSql(db, tables), { timeoutMs });
  const counts: Record<string, number> = {};
  for (const [table = '', count = ''] of rows) counts[table] = Number(count);
  return counts;
}
