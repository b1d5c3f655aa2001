import { ApplicationFailure } from '@temporalio/common';
import { foreignPrivileges, type UserState } from '../../activities/db/admin';
import { redact, redactFailure, REDACTED, sqlFailure, tailLines } from '../../activities/db/client';
import { dbFromHost, dbName, dbPassword, dbUser, snapshotName, validate } from '../../activities/db/names';
import { failure, FailureType } from '../../activities/errors';

describe('names', () => {
  test.each(['site-1', 'site_db', 'a1', 'x'.repeat(64)])('database name %j is accepted', (n) => {
    expect(dbName.safeParse(n).success).toBe(true);
  });

  test.each([
    'a`b',
    'a;rm -rf /',
    '$(id)',
    "it's",
    'a b',
    'Site',
    '-lead',
    'trail-',
    '../etc',
    'a\0b',
    'a',
    'x'.repeat(65),
    'mysql',
    'information_schema',
    'performance_schema',
    'sys',
  ])('database name %j is refused', (n) => {
    expect(dbName.safeParse(n).success).toBe(false);
  });

  test('user names allow 80 characters, not 81, and not root', () => {
    expect(dbUser.safeParse('u'.repeat(80)).success).toBe(true);
    expect(dbUser.safeParse('u'.repeat(81)).success).toBe(false);
    expect(dbUser.safeParse('root').success).toBe(false);
    expect(dbUser.safeParse("u'@'%").success).toBe(false);
  });

  test('connecting hosts', () => {
    for (const ok of ['%', 'localhost', '10.0.0.%', '10.0.0.0/255.255.255.0', 'fe80::1', 'app-1.example'])
      expect(dbFromHost.safeParse(ok).success).toBe(true);
    for (const bad of ["%'; --", 'a b', '', 'x`y']) expect(dbFromHost.safeParse(bad).success).toBe(false);
  });

  test('snapshot names are slugs', () => {
    expect(snapshotName.safeParse('pre-deploy-42').success).toBe(true);
    expect(snapshotName.safeParse('../../etc/passwd').success).toBe(false);
  });

  test('passwords: printable, 16..128, and a refused one is never echoed', () => {
    expect(dbPassword.safeParse('a"b\'c\\d#e;f g=h!!').success).toBe(true);
    const bad = 'short-secret';
    let err: unknown;
    try {
      validate(dbPassword, bad, 'password');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(FailureType.InvalidInput);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect(JSON.stringify(err) + (err as Error).message).not.toContain(bad);
    expect(dbPassword.safeParse('line\nbreak-in-password').success).toBe(false);
  });
});

describe('redaction', () => {
  const secret = "p'ss\\word-1234567890";
  test('removes the secret as given and as quoted in SQL', () => {
    const echoed = `ERROR 1064 near 'IDENTIFIED BY 'p\\'ss\\\\word-1234567890'' and ${secret}`;
    const out = redact(echoed, [secret]);
    expect(out).not.toContain('ss\\\\word');
    expect(out).not.toContain(secret);
    expect(out.split(REDACTED).length).toBe(3);
  });

  test('sqlFailure scrubs message and details, and calls a syntax error InvalidInput', () => {
    const f = sqlFailure(
      'host1',
      { code: 1, stdout: '', stderr: `ERROR 1064 (42000) at line 3: syntax near '${secret}'\n` },
      [secret],
    );
    expect(f.type).toBe(FailureType.InvalidInput);
    expect(f.message).toContain('ERROR 1064');
    expect(JSON.stringify(f.details) + f.message).not.toContain(secret);
    const other = sqlFailure('host1', { code: 1, stdout: '', stderr: 'ERROR 2002 (HY000): no socket\n' }, []);
    expect(other.type).toBe(FailureType.CommandFailed);
    expect(other.nonRetryable).toBe(false);
  });

  test('redactFailure keeps the type and scrubs a failure raised below (e.g. a timeout)', () => {
    const f = redactFailure(
      failure(FailureType.CommandTimeout, `ran long: ${secret}`, { stderr: [secret] }),
      [secret],
    ) as ApplicationFailure;
    expect(f.type).toBe(FailureType.CommandTimeout);
    expect(JSON.stringify(f.details) + f.message).not.toContain(secret);
  });
});

describe('foreignPrivileges', () => {
  const state = (grants: UserState['grants'], globals: UserState['globals'] = []): UserState => ({
    accounts: ['%'],
    grants,
    globals,
  });
  test('grants on its own database (stored as the escaped pattern) are not foreign', () => {
    expect(foreignPrivileges(state([{ kind: 'db', host: '%', db: 'site\\_db' }]), 'site_db')).toEqual([]);
    expect(foreignPrivileges(state([{ kind: 'table', host: '%', db: 'site_db' }]), 'site_db')).toEqual([]);
  });
  test('another database, or any global privilege, is', () => {
    expect(foreignPrivileges(state([{ kind: 'db', host: '%', db: 'other' }]), 'site_db')).toHaveLength(1);
    // the unescaped pattern would also match sitexdb: not ours
    expect(foreignPrivileges(state([{ kind: 'db', host: '%', db: 'site_db' }]), 'site_db')).toHaveLength(1);
    expect(foreignPrivileges(state([], [{ host: "'%'", privilege: 'SELECT' }]), 'site_db')).toHaveLength(1);
  });
});

test('tailLines cuts at a line start, never through a line', () => {
  expect(tailLines('short', 100)).toBe('short');
  expect(tailLines('aaaa-secret-aaaa\nline two\n', 15)).toBe('line two\n');
  expect(tailLines('x'.repeat(50), 10)).toBe('');
});
