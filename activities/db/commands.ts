import { remoteScript } from '../ssh/remoteScript';

/**
 * MariaDB commands and SQL text, built and never run here (Kamal-style: what to run is separate
 * from where and when). Every builder is a pure function of already validated names; identifiers
 * and literals are quoted anyway, so a name that slipped past validation still could not break out.
 *
 * Secrets never appear in an argument vector: SQL that carries one (a password hash) is sent to
 * the `mariadb` client on stdin.
 */

// ------------------------------------------------------------------ quoting

function assertNoNul(text: string, what: string) {
  if (text.includes('\0')) throw new TypeError(`${what} cannot contain a NUL byte`);
}

/** A quoted identifier: `name`, with each backtick doubled (the only character special inside). */
export function quoteIdent(name: string): string {
  assertNoNul(name, 'an identifier');
  if (name.length === 0) throw new TypeError('an empty identifier');
  return '`' + name.replace(/`/g, '``') + '`';
}

const STRING_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '"': '\\"',
  '\n': '\\n',
  '\r': '\\r',
  '\x1a': '\\Z',
};

/**
 * A quoted string literal. Backslash, quotes, line breaks and ^Z are escaped (NUL is refused), so the
 * literal is a single line and means the same to the server and to the client's statement splitter.
 * It relies on backslash escapes, which is why every script starts with SESSION_PRELUDE.
 */
export function quoteString(text: string): string {
  assertNoNul(text, 'a string literal');
  // eslint-disable-next-line no-control-regex -- ^Z is one of the characters MariaDB escapes
  return "'" + text.replace(/[\\'"\n\r\x1a]/g, (c) => STRING_ESCAPES[c]!) + "'";
}

/**
 * The database part of a GRANT. There `_` and `%` are wildcards (`a_b`.* would also cover `axb`),
 * so they are escaped with a backslash inside the backticks.
 */
export function grantDatabase(db: string): string {
  return quoteIdent(db.replace(/[\\_%]/g, '\\$&'));
}

/** An account: 'user'@'host'. */
export function account(user: string, host: string): string {
  return `${quoteString(user)}@${quoteString(host)}`;
}

// ------------------------------------------------------------------ SQL text

/**
 * First lines of every script we send: backslash escapes on whatever the server's sql_mode (our
 * literals depend on it), and DDL gives up on a metadata lock after 30 s instead of the server's
 * default of a day (a DROP behind a long transaction would otherwise hang the activity).
 */
export const SESSION_PRELUDE =
  "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '');\n" +
  'SET SESSION lock_wait_timeout = 30;\n';

export const CHARSET = 'utf8mb4';
export const COLLATION = 'utf8mb4_unicode_ci';

function script(statements: string[]): string {
  return SESSION_PRELUDE + statements.map((s) => s + ';\n').join('');
}

/** Whether the database exists (one row: 0 or 1), then create it if absent, then its character set. */
export function ensureDatabaseSql(db: string): string {
  const name = quoteString(db);
  return script([
    `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${name}`,
    `CREATE DATABASE IF NOT EXISTS ${quoteIdent(db)} CHARACTER SET ${CHARSET} COLLATE ${COLLATION}`,
    `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${name}`,
  ]);
}

export function dropDatabaseSql(db: string): string {
  return script([`DROP DATABASE IF EXISTS ${quoteIdent(db)}`]);
}

/** Drop (if there) and create empty: what a snapshot restore loads into. */
export function recreateDatabaseSql(db: string): string {
  return script([
    `DROP DATABASE IF EXISTS ${quoteIdent(db)}`,
    `CREATE DATABASE ${quoteIdent(db)} CHARACTER SET ${CHARSET} COLLATE ${COLLATION}`,
  ]);
}

/**
 * Everything the server knows about a user name, one row per fact: `account HOST -` (roles, which
 * share the name space, are not accounts and are never dropped), `db HOST DB`
 * (DB as stored: the GRANT pattern), `table|column|routine HOST DB`, and `global HOST PRIVILEGE` for
 * any global privilege beyond USAGE. Separate statements, so no UNION has to reconcile collations.
 */
export function userStateSql(user: string): string {
  const u = quoteString(user);
  const grantee = quoteString(`'${user}'`);
  return script([
    `SELECT 'account', Host, '-' FROM mysql.user WHERE User = ${u} AND is_role = 'N'`,
    `SELECT 'db', Host, Db FROM mysql.db WHERE User = ${u}`,
    `SELECT 'table', Host, Db FROM mysql.tables_priv WHERE User = ${u}`,
    `SELECT 'column', Host, Db FROM mysql.columns_priv WHERE User = ${u}`,
    `SELECT 'routine', Host, Db FROM mysql.procs_priv WHERE User = ${u}`,
    "SELECT 'global', SUBSTRING(GRANTEE, LOCATE('@', GRANTEE) + 1), PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES" +
      ` WHERE SUBSTRING_INDEX(GRANTEE, '@', 1) = ${grantee} AND PRIVILEGE_TYPE <> 'USAGE'`,
  ]);
}

export interface EnsureUserPlan {
  user: string;
  db: string;
  /** mysql_native_password hash ('*' and 40 hex digits): a secret, this SQL goes on stdin only. */
  passwordHash: string;
  fromHosts: readonly string[];
  /** Accounts of this user from hosts no longer wanted. */
  dropHosts: readonly string[];
}

/**
 * Converge a user's accounts: drop the unwanted ones, create the missing ones, set the password on
 * all of them (to the same hash: a no-op in effect when unchanged), grant ALL on the one database.
 */
export function ensureUserSql(p: EnsureUserPlan): string {
  const hash = quoteString(p.passwordHash);
  return script([
    ...p.dropHosts.map((h) => `DROP USER IF EXISTS ${account(p.user, h)}`),
    ...p.fromHosts.flatMap((h) => [
      `CREATE USER IF NOT EXISTS ${account(p.user, h)} IDENTIFIED BY PASSWORD ${hash}`,
      `ALTER USER ${account(p.user, h)} IDENTIFIED BY PASSWORD ${hash}`,
      `GRANT ALL PRIVILEGES ON ${grantDatabase(p.db)}.* TO ${account(p.user, h)}`,
    ]),
  ]);
}

export function setPasswordSql(user: string, hosts: readonly string[], passwordHash: string): string {
  const hash = quoteString(passwordHash);
  return script(hosts.map((h) => `ALTER USER ${account(user, h)} IDENTIFIED BY PASSWORD ${hash}`));
}

export function dropUserSql(user: string, hosts: readonly string[]): string {
  return script(hosts.map((h) => `DROP USER IF EXISTS ${account(user, h)}`));
}

/** First a row with 1 if the database exists (else 0), then its base tables, one name a row. */
export function listTablesSql(db: string): string {
  return script([
    `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${quoteString(db)}`,
    'SELECT TABLE_NAME FROM information_schema.TABLES' +
      ` WHERE TABLE_SCHEMA = ${quoteString(db)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
  ]);
}

/** Exact row counts (`name<TAB>count`), all read in one consistent snapshot. */
export function rowCountsSql(db: string, tables: readonly string[]): string {
  return script([
    'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY',
    ...tables.map((t) => `SELECT ${quoteString(t)}, COUNT(*) FROM ${quoteIdent(db)}.${quoteIdent(t)}`),
    'COMMIT',
  ]);
}

// ------------------------------------------------------------------ argument vectors

/** The client as root over the server's unix socket; SQL arrives on stdin, rows leave tab-separated. */
export function mariadbArgv(db?: string): string[] {
  return [
    'mariadb',
    '--batch',
    '--skip-column-names',
    `--default-character-set=${CHARSET}`,
    ...(db === undefined ? [] : [`--database=${db}`]),
  ];
}

/**
 * A consistent, streamed dump of one database (no CREATE DATABASE/USE: it loads into any name):
 * InnoDB tables in one transaction without locking, rows fetched one at a time, with its routines,
 * triggers and events.
 */
export function mysqldumpArgv(db: string): string[] {
  return [
    'mysqldump',
    '--single-transaction',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    `--default-character-set=${CHARSET}`,
    '--',
    db,
  ];
}

/** gzip levels accepted (the default, 6, is gzip's own). */
export type GzipLevel = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

function gzipLevel(level: GzipLevel): string {
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new TypeError(`bad gzip level ${level}`);
  return String(level);
}

/** `LEVEL DUMP-ARGV...`: the dump piped into gzip on the host; pipefail makes a failed dump fail. */
export const DUMP_SCRIPT = 'level=$1; shift; "$@" | gzip -c "-$level"';

/** The dump, gzipped on the host, on stdout. */
export function dumpPipelineArgv(db: string, level: GzipLevel = 6): string[] {
  return ['bash', '-o', 'pipefail', '-c', DUMP_SCRIPT, 'qm-dump', gzipLevel(level), ...mysqldumpArgv(db)];
}

/** `CLIENT-ARGV...`: gzip on stdin, decompressed on the host into the client. */
export const RESTORE_SCRIPT = 'gunzip -c | "$@"';

/** Load a gzipped dump from stdin into `db` (which must exist). */
export function restorePipelineArgv(db: string): string[] {
  return ['bash', '-o', 'pipefail', '-c', RESTORE_SCRIPT, 'qm-restore', ...mariadbArgv(db)];
}

// ------------------------------------------------------------------ snapshots on the DB host

export const SNAPSHOT_ROOT = '/srv/qm/snapshots';

export function snapshotPaths(db: string, name: string) {
  const dir = `${SNAPSHOT_ROOT}/${db}`;
  return { dir, file: `${dir}/${name}.sql.gz`, checksum: `${dir}/${name}.sql.gz.sha256` };
}

/** Exit codes of the snapshot scripts that mean something other than "a command failed". */
export const SNAPSHOT_MISSING = 3;
export const SNAPSHOT_CORRUPT = 4;

/**
 * `DIR NAME LEVEL DUMP-ARGV...`: DIR/NAME.sql.gz and its checksum, made aside and renamed into
 * place, unless a snapshot of that name that matches its checksum is there already (snapshot.sh).
 * Prints `existing|created SHA256 BYTES`.
 */
export const SNAPSHOT_SCRIPT = remoteScript(__dirname, 'snapshot.sh');

export function snapshotArgv(db: string, name: string, level: GzipLevel = 6): string[] {
  const { dir } = snapshotPaths(db, name);
  return ['bash', '-c', SNAPSHOT_SCRIPT, 'qm-snapshot', dir, name, gzipLevel(level), ...mysqldumpArgv(db)];
}

/**
 * `DIR NAME RECREATE-SQL CLIENT-ARGV...`. Checks the snapshot (exit 3 if absent, 4 if it does not
 * match its checksum) BEFORE touching the database, then drops and recreates the database and loads
 * the snapshot: the result is exactly the snapshot, however often it runs.
 */
export const RESTORE_SNAPSHOT_SCRIPT = `set -euo pipefail
dir=$1 name=$2 recreate=$3; shift 3
file=$name.sql.gz
[ -f "$dir/$file" ] && [ -f "$dir/$file.sha256" ] || { echo "qm: no snapshot $dir/$file" >&2; exit ${SNAPSHOT_MISSING}; }
(cd "$dir" && sha256sum --status -c -- "$file.sha256") || { echo "qm: $dir/$file does not match its checksum" >&2; exit ${SNAPSHOT_CORRUPT}; }
mariadb --batch <<<"$recreate"
gunzip -c -- "$dir/$file" | "$@"
cut -d' ' -f1 "$dir/$file.sha256"`;

export function restoreSnapshotArgv(db: string, name: string): string[] {
  const { dir } = snapshotPaths(db, name);
  return [
    'bash',
    '-c',
    RESTORE_SNAPSHOT_SCRIPT,
    'qm-restore-snapshot',
    dir,
    name,
    recreateDatabaseSql(db),
    ...mariadbArgv(db),
  ];
}

// ------------------------------------------------------------------ client option files

/**
 * A client option file (for `--defaults-extra-file=/dev/stdin`), the way to hand a password to the
 * `mariadb` client without putting it on its command line or in its environment.
 */
export function clientOptionFile(o: {
  user: string;
  password: string;
  host?: string;
  port?: number;
}): string {
  const value = (v: string) => {
    if (/[\0\n\r]/.test(v)) throw new TypeError('an option value cannot hold NUL or a line break');
    return '"' + v.replace(/[\\"]/g, '\\$&') + '"';
  };
  const lines = ['[client]', `user=${value(o.user)}`, `password=${value(o.password)}`];
  if (o.host !== undefined) lines.push(`host=${value(o.host)}`);
  if (o.port !== undefined) lines.push(`port=${o.port}`);
  return lines.join('\n') + '\n';
}

// ------------------------------------------------------------------ output

const BATCH_UNESCAPES: Record<string, string> = { '\\\\': '\\', '\\t': '\t', '\\n': '\n', '\\0': '\0' };

/**
 * Rows of `mariadb --batch --skip-column-names` output: tab-separated columns, one row a line, with
 * backslash, tab, newline and NUL inside values escaped by the client.
 */
export function parseBatch(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('\t').map((v) => v.replace(/\\[\\tn0]/g, (e) => BATCH_UNESCAPES[e]!)));
}
