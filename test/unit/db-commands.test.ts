import {
  account,
  clientOptionFile,
  DUMP_SCRIPT,
  dumpPipelineArgv,
  ensureUserSql,
  grantDatabase,
  mariadbArgv,
  parseBatch,
  quoteIdent,
  quoteString,
  restorePipelineArgv,
  restoreSnapshotArgv,
  RESTORE_SCRIPT,
  rowCountsSql,
  SESSION_PRELUDE,
  snapshotArgv,
  SNAPSHOT_SCRIPT,
} from '../../activities/db/commands';
import { nativePasswordHash } from '../../activities/db/password';

/** Read a backtick-quoted identifier back, the way the server does (`` is one backtick). */
function unquoteIdent(q: string): string {
  expect(q.startsWith('`') && q.endsWith('`')).toBe(true);
  const inner = q.slice(1, -1);
  expect(inner.replace(/``/g, '')).not.toContain('`'); // no lone backtick could end it early
  return inner.replace(/``/g, '`');
}

/** Read a quoted string literal back, the way the server does with backslash escapes on. */
function unquoteString(q: string): string {
  expect(q.startsWith("'") && q.endsWith("'")).toBe(true);
  const map: Record<string, string> = { n: '\n', r: '\r', Z: '\x1a', '0': '\0' };
  let out = '';
  const inner = q.slice(1, -1);
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (c === '\\') {
      const e = inner[++i]!;
      out += map[e] ?? e;
    } else {
      expect(c).not.toBe("'"); // an unescaped quote would end the literal
      out += c;
    }
  }
  return out;
}

const HOSTILE = [
  'plain',
  'back`tick',
  '``',
  '`; DROP DATABASE mysql; -- ',
  "it's",
  "'; DROP USER root; --",
  'back\\slash\\',
  'double"quote',
  'new\nline\r',
  'ctrl-z\x1a',
  '$(reboot) `reboot` ; | & > <',
  'ünïcødé ✓',
];

describe('quoteIdent', () => {
  test.each(HOSTILE)('%j reads back as itself and cannot end early', (name) => {
    expect(unquoteIdent(quoteIdent(name))).toBe(name);
  });
  test('doubles backticks', () => {
    expect(quoteIdent('a`b')).toBe('`a``b`');
    expect(quoteIdent('site-1')).toBe('`site-1`');
  });
  test('refuses NUL and empty', () => {
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
    expect(() => quoteIdent('')).toThrow(/empty/);
  });
});

describe('quoteString', () => {
  test.each(HOSTILE)('%j reads back as itself and stays on one line', (text) => {
    const q = quoteString(text);
    expect(unquoteString(q)).toBe(text);
    expect(q).not.toMatch(/[\n\r]/);
  });
  test('escapes quotes and backslashes', () => {
    expect(quoteString("a'b\\c")).toBe("'a\\'b\\\\c'");
  });
  test('refuses NUL', () => {
    expect(() => quoteString('a\0')).toThrow(/NUL/);
  });
});

describe('grantDatabase', () => {
  test('escapes the GRANT wildcards _ and %', () => {
    expect(grantDatabase('site_db')).toBe('`site\\_db`');
    expect(grantDatabase('a%b')).toBe('`a\\%b`');
    expect(grantDatabase('site-1')).toBe('`site-1`');
  });
});

test('account quotes both halves', () => {
  expect(account('u', '%')).toBe("'u'@'%'");
  expect(account("x'y", '10.0.0.%')).toBe("'x\\'y'@'10.0.0.%'");
});

describe('nativePasswordHash', () => {
  test('matches the server PASSWORD() function', () => {
    // values from SELECT PASSWORD(...) on MariaDB 10.11
    expect(nativePasswordHash('password')).toBe('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
    expect(nativePasswordHash('a"b\'c\\d#e;f g=h')).toBe('*6CE20AB94027482A3898497BDADF5BD7C53AB926');
  });
});

describe('ensureUserSql', () => {
  const password = "s3cret'; DROP USER root; --x";
  const hash = nativePasswordHash(password);
  const sql = ensureUserSql({
    user: 'site_user',
    db: 'site_db',
    passwordHash: hash,
    fromHosts: ['%', '10.0.0.%'],
    dropHosts: ['old.example'],
  });
  test('never holds the plain password, only its hash', () => {
    expect(sql).not.toContain('s3cret');
    expect(sql).toContain(`IDENTIFIED BY PASSWORD '${hash}'`);
  });
  test('converges: drops unwanted accounts, creates if absent, sets password, grants on one database', () => {
    expect(sql.startsWith(SESSION_PRELUDE)).toBe(true);
    const lines = sql.slice(SESSION_PRELUDE.length).trim().split('\n');
    expect(lines).toEqual([
      "DROP USER IF EXISTS 'site_user'@'old.example';",
      `CREATE USER IF NOT EXISTS 'site_user'@'%' IDENTIFIED BY PASSWORD '${hash}';`,
      `ALTER USER 'site_user'@'%' IDENTIFIED BY PASSWORD '${hash}';`,
      "GRANT ALL PRIVILEGES ON `site\\_db`.* TO 'site_user'@'%';",
      `CREATE USER IF NOT EXISTS 'site_user'@'10.0.0.%' IDENTIFIED BY PASSWORD '${hash}';`,
      `ALTER USER 'site_user'@'10.0.0.%' IDENTIFIED BY PASSWORD '${hash}';`,
      "GRANT ALL PRIVILEGES ON `site\\_db`.* TO 'site_user'@'10.0.0.%';",
    ]);
  });
});

test('rowCountsSql reads every table in one snapshot, names quoted', () => {
  const sql = rowCountsSql('d-1', ['a`b', "c'd"]);
  expect(sql).toContain('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;');
  expect(sql).toContain("SELECT 'a`b', COUNT(*) FROM `d-1`.`a``b`;");
  expect(sql).toContain("SELECT 'c\\'d', COUNT(*) FROM `d-1`.`c'd`;");
  expect(sql.trim().endsWith('COMMIT;')).toBe(true);
});

describe('argument vectors', () => {
  test('the client reads SQL from stdin: nothing but options on its command line', () => {
    expect(mariadbArgv()).toEqual([
      'mariadb',
      '--batch',
      '--skip-column-names',
      '--default-character-set=utf8mb4',
    ]);
    expect(mariadbArgv('site-1')).toContain('--database=site-1');
  });

  test('the dump pipeline is a constant script under pipefail with the names as arguments', () => {
    const argv = dumpPipelineArgv('site-1');
    expect(argv.slice(0, 6)).toEqual(['bash', '-o', 'pipefail', '-c', DUMP_SCRIPT, 'qm-dump']);
    expect(argv.slice(6)).toEqual([
      '6',
      'mysqldump',
      '--single-transaction',
      '--quick',
      '--routines',
      '--triggers',
      '--events',
      '--default-character-set=utf8mb4',
      '--',
      'site-1',
    ]);
    expect(DUMP_SCRIPT).not.toContain('site-1');
    expect(dumpPipelineArgv('x1', 1)[6]).toBe('1');
    expect(() => dumpPipelineArgv('x1', 0 as never)).toThrow(/gzip level/);
  });

  test('the restore pipeline gunzips into the client under pipefail', () => {
    const argv = restorePipelineArgv('site-1');
    expect(argv.slice(0, 6)).toEqual(['bash', '-o', 'pipefail', '-c', RESTORE_SCRIPT, 'qm-restore']);
    expect(argv.slice(6)).toEqual(mariadbArgv('site-1'));
  });

  test('snapshot scripts are constants; paths, names and SQL travel as arguments', () => {
    const snap = snapshotArgv('site-1', 'pre-deploy-7');
    expect(snap.slice(0, 4)).toEqual(['bash', '-c', SNAPSHOT_SCRIPT, 'qm-snapshot']);
    expect(snap.slice(4, 7)).toEqual(['/srv/qm/snapshots/site-1', 'pre-deploy-7', '6']);
    expect(SNAPSHOT_SCRIPT).toMatch(/^set -euo pipefail/);
    const restore = restoreSnapshotArgv('site-1', 'pre-deploy-7');
    expect(restore.slice(4, 6)).toEqual(['/srv/qm/snapshots/site-1', 'pre-deploy-7']);
    expect(restore[6]).toContain('DROP DATABASE IF EXISTS `site-1`;');
    expect(restore[6]).toContain('CREATE DATABASE `site-1` CHARACTER SET utf8mb4');
    expect(restore.slice(7)).toEqual(mariadbArgv('site-1'));
  });
});

describe('clientOptionFile', () => {
  test('quotes values so that quotes, backslashes, # and ; stay in the password', () => {
    expect(clientOptionFile({ user: 'u', password: 'a"b\'c\\d#e;f g=h', host: '10.0.0.1', port: 3306 })).toBe(
      '[client]\nuser="u"\npassword="a\\"b\'c\\\\d#e;f g=h"\nhost="10.0.0.1"\nport=3306\n',
    );
  });
  test('refuses line breaks (they would start a new option)', () => {
    expect(() => clientOptionFile({ user: 'u', password: 'a\nhost=evil' })).toThrow(/line break/);
  });
});

test('parseBatch splits rows and columns and undoes the client escapes', () => {
  expect(parseBatch('a\tb\nc\\td\t\\\\x\\n\n')).toEqual([
    ['a', 'b'],
    ['c\td', '\\x\n'],
  ]);
  expect(parseBatch('')).toEqual([]);
});
