import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ApplicationFailure, type RetryPolicy } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { createActivities } from '../../activities';
import {
  dropDatabase,
  dropUser,
  ensureDatabase,
  ensureUser,
  rotatePassword,
  runSql,
  tableRowCounts,
} from '../../activities/db/admin';
import { REDACTED } from '../../activities/db/client';
import { clientOptionFile, snapshotPaths } from '../../activities/db/commands';
import { dumpDatabase, restoreDatabase } from '../../activities/db/dump';
import { nativePasswordHash } from '../../activities/db/password';
import { restoreSnapshot, snapshotDatabase } from '../../activities/db/snapshot';
import { FailureType } from '../../activities/errors';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { withWorker } from '../support/temporal';
import { testbed } from '../../dev/fleet';
import { runActivity } from '../workflows';

/**
 * MariaDB activities against the real bed: host1 is the DB host, host2 and host3 connect to it over
 * TCP like the app hosts will. Outcomes are checked with the server itself (through `testbed exec`,
 * which bypasses our SSH code), never with what our functions say they did.
 */
const DB_HOST = 'host1';
const RUN = `qmt${Date.now().toString(36)}`;
const DB = `${RUN}-site`;
const OTHER_DB = `${RUN}_other`;
const RESTORE_DB = `${RUN}-copy`;
const RETRY_DB = `${RUN}-retry`;
const USER = `${RUN}-user`;
const USER2 = `${RUN}_user2`;
const POLICY_USER = `${RUN}-policy`;
const DATABASES = [DB, OTHER_DB, RESTORE_DB, RETRY_DB];
const USERS = [USER, USER2, POLICY_USER];
const newPassword = () => randomBytes(18).toString('base64url') + `'"\\;#`;

let bed: Bed;
let dbAddress: string;
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-mariadb-test-'));

/** SQL as root on a host, outside our code: rows as tab-split lines. */
function server(sql: string, host = DB_HOST): string[][] {
  const out = testbed.exec(host, ['mariadb', '--batch', '--skip-column-names', '-e', sql]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
}

/** Log in as `user` over TCP from another host, password in an option file on stdin. */
async function loginFrom(client: string, user: string, password: string, sql: string) {
  return bed.fleet.pool.exec(
    client,
    [
      'mariadb',
      '--defaults-extra-file=/dev/stdin',
      '--batch',
      '--skip-column-names',
      '-h',
      dbAddress,
      '-e',
      sql,
    ],
    { stdin: clientOptionFile({ user, password }), check: false, timeoutMs: 20_000 },
  );
}

async function expectFailure(p: Promise<unknown>, type: string): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe(type);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  bed = await openBed();
  dbAddress = bed.fleet.pool.host(DB_HOST).address;
});

afterAll(async () => {
  // the library functions clean up, and dropping twice is fine
  for (const d of [OTHER_DB, RESTORE_DB]) {
    await dropDatabase(bed.fleet.pool, DB_HOST, d);
    expect(await dropDatabase(bed.fleet.pool, DB_HOST, d)).toEqual({ dropped: false });
  }
  for (const u of USERS) {
    await dropUser(bed.fleet.pool, DB_HOST, u);
    expect(await dropUser(bed.fleet.pool, DB_HOST, u)).toEqual({ dropped: [] });
  }
  // then whatever a failed test may have left
  const cleanup = DATABASES.map((d) => `DROP DATABASE IF EXISTS \`${d}\`;`).join(' ');
  const users = server(`SELECT User, Host FROM mysql.user WHERE User LIKE '${RUN}%'`);
  server(cleanup + users.map(([u, h]) => ` DROP USER IF EXISTS '${u}'@'${h}';`).join(''));
  for (const d of DATABASES) testbed.exec(DB_HOST, ['rm', '-rf', snapshotPaths(d, 'x').dir]);
  fs.rmSync(tmpDir, { recursive: true, force: true });
  // nothing of this run is left on the server
  expect(server(`SELECT COUNT(*) FROM mysql.user WHERE User LIKE '${RUN}%'`)).toEqual([['0']]);
  expect(server(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '${RUN}%'`)).toEqual(
    [['0']],
  );
  await bed.close();
});

describe('databases and users', () => {
  const password = newPassword();

  test('ensureDatabase twice: created once, utf8mb4, the second run changes nothing', async () => {
    const first = await ensureDatabase(bed.fleet.pool, DB_HOST, DB);
    expect(first).toEqual({ db: DB, created: true, charset: 'utf8mb4', collation: 'utf8mb4_unicode_ci' });
    server(`CREATE TABLE \`${DB}\`.keepme (id INT PRIMARY KEY); INSERT INTO \`${DB}\`.keepme VALUES (1)`);
    const second = await ensureDatabase(bed.fleet.pool, DB_HOST, DB);
    expect(second.created).toBe(false);
    expect(server(`SELECT id FROM \`${DB}\`.keepme`)).toEqual([['1']]);
    expect(
      server(
        `SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${DB}'`,
      ),
    ).toEqual([['utf8mb4']]);
    await ensureDatabase(bed.fleet.pool, DB_HOST, OTHER_DB);
  });

  test('ensureUser twice leaves the same accounts, password and grants', async () => {
    const state = () =>
      server(
        `SELECT Host, authentication_string FROM mysql.user WHERE User = '${USER}' ORDER BY Host;` +
          ` SHOW GRANTS FOR '${USER}'@'%'`,
      );
    const first = await ensureUser(bed.fleet.pool, DB_HOST, { user: USER, db: DB, password });
    expect(first).toMatchObject({ accounts: ['%'], created: ['%'], dropped: [] });
    const after1 = state();
    expect(after1[0]).toEqual(['%', nativePasswordHash(password)]);
    expect(after1.map((r) => r[0]).join('\n')).toContain(
      `GRANT ALL PRIVILEGES ON \`${DB}\`.* TO \`${USER}\`@\`%\``,
    );
    const second = await ensureUser(bed.fleet.pool, DB_HOST, { user: USER, db: DB, password });
    expect(second).toMatchObject({ created: [], dropped: [] });
    expect(state()).toEqual(after1);
  });

  test('the user logs in over TCP from another host and sees only its own database', async () => {
    const r = await loginFrom('host2', USER, password, 'SHOW DATABASES; SELECT CURRENT_USER()');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([DB, 'information_schema', `${USER}@%`].sort());
    const own = await loginFrom(
      'host2',
      USER,
      password,
      `CREATE TABLE \`${DB}\`.mine (x INT); DROP TABLE \`${DB}\`.mine`,
    );
    expect(own.code).toBe(0);
    const other = await loginFrom('host2', USER, password, `SELECT 1 FROM \`${OTHER_DB}\`.nothing`);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/ERROR 1142|ERROR 1044/);
  });

  test('the grant on a name with _ covers that database only, not what the wildcard would match', async () => {
    const lookalike = OTHER_DB.replace('_', 'x');
    DATABASES.push(lookalike);
    await ensureDatabase(bed.fleet.pool, DB_HOST, lookalike);
    const pw = newPassword();
    await ensureUser(bed.fleet.pool, DB_HOST, { user: USER2, db: OTHER_DB, password: pw });
    const r = await loginFrom('host3', USER2, pw, 'SHOW DATABASES');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['information_schema', OTHER_DB].sort());
  });

  test('a user that holds another database is refused, not moved (Conflict), and keeps its grants', async () => {
    const err = await expectFailure(
      ensureUser(bed.fleet.pool, DB_HOST, { user: USER2, db: DB, password: newPassword() }),
      FailureType.Conflict,
    );
    expect(err.nonRetryable).toBe(true);
    expect(server(`SELECT Db FROM mysql.db WHERE User = '${USER2}'`)).toEqual([
      [OTHER_DB.replace('_', '\\\\_')],
    ]);
  });

  test('fromHosts converges: an account from a host no longer listed is dropped', async () => {
    const pw = newPassword();
    const host2 = bed.fleet.pool.host('host2').address;
    const r = await ensureUser(bed.fleet.pool, DB_HOST, {
      user: USER2,
      db: OTHER_DB,
      password: pw,
      fromHosts: [host2],
    });
    expect(r).toMatchObject({ accounts: [host2], created: [host2], dropped: ['%'] });
    expect(server(`SELECT Host FROM mysql.user WHERE User = '${USER2}'`)).toEqual([[host2]]);
    expect((await loginFrom('host2', USER2, pw, 'SELECT 1')).code).toBe(0);
    const fromHost3 = await loginFrom('host3', USER2, pw, 'SELECT 1');
    expect(fromHost3.code).not.toBe(0);
    expect(fromHost3.stderr).toMatch(/Access denied for user|ERROR 1130/);
  });

  test('rotatePassword: the old password is refused, the new one accepted; twice is the same', async () => {
    const next = newPassword();
    expect(await rotatePassword(bed.fleet.pool, DB_HOST, USER, next)).toEqual({
      user: USER,
      accounts: ['%'],
    });
    await rotatePassword(bed.fleet.pool, DB_HOST, USER, next);
    const old = await loginFrom('host2', USER, password, 'SELECT 1');
    expect(old.code).not.toBe(0);
    expect(old.stderr).toMatch(/ERROR 1045/);
    const fresh = await loginFrom('host2', USER, next, 'SELECT CURRENT_USER()');
    expect(fresh.code).toBe(0);
    expect(fresh.stdout.trim()).toBe(`${USER}@%`);
    await expectFailure(rotatePassword(bed.fleet.pool, DB_HOST, `${RUN}-nobody`, next), FailureType.Conflict);
  });

  test('no password reaches ps on the DB host, nor the server general log', async () => {
    const pw = newPassword();
    const hash = nativePasswordHash(pw);
    const logFile = `${RUN}-general.log`;
    server(`SET GLOBAL general_log_file = '${logFile}'; SET GLOBAL general_log = ON`);
    // sample every process's command line on the DB host while ensureUser runs, over and over
    const sampling = bed.fleet.pool.exec(
      DB_HOST,
      ['timeout', '4', 'sh', '-c', 'while :; do ps -eo args; done'],
      {
        check: false,
        timeoutMs: 20_000,
      },
    );
    let runs = 0;
    const deadline = Date.now() + 3500;
    try {
      while (Date.now() < deadline) {
        await ensureUser(bed.fleet.pool, DB_HOST, { user: USER, db: DB, password: pw });
        await rotatePassword(bed.fleet.pool, DB_HOST, USER, pw);
        runs++;
      }
    } finally {
      server('SET GLOBAL general_log = OFF');
    }
    const seen = (await sampling).stdout;
    const datadir = server('SELECT @@datadir')[0]![0]!;
    const generalLog = testbed.exec(DB_HOST, ['cat', path.join(datadir, logFile)]);
    testbed.exec(DB_HOST, ['rm', '-f', path.join(datadir, logFile)]);

    expect(runs).toBeGreaterThan(3);
    // the sampler did catch our client at work (else this test could not fail)
    expect(seen).toContain('mariadb --batch --skip-column-names');
    for (const secret of [pw, hash, hash.slice(1)]) expect(seen).not.toContain(secret);
    expect(generalLog).toContain(`ALTER USER '${USER}'@'%' IDENTIFIED BY PASSWORD`);
    expect(generalLog).not.toContain(pw);
    // the login still works with that password (the hash was right)
    expect((await loginFrom('host2', USER, pw, 'SELECT 1')).code).toBe(0);
  });

  test('a failure never carries the password, though the client echoes the failing statement', async () => {
    // a password policy plugin with --strict-password-validation (the default) refuses accounts
    // created from a hash: the client then prints the statement, hash included, on stderr
    const pw = newPassword();
    server("INSTALL SONAME 'simple_password_check'");
    let err: ApplicationFailure;
    try {
      err = await expectFailure(
        ensureUser(bed.fleet.pool, DB_HOST, { user: POLICY_USER, db: DB, password: pw }),
        FailureType.Conflict,
      );
    } finally {
      server("UNINSTALL SONAME 'simple_password_check'");
    }
    const reported = JSON.stringify(err.details) + err.message;
    expect(reported).toContain('strict-password-validation');
    expect(reported).toContain(`IDENTIFIED BY PASSWORD '${REDACTED}'`);
    for (const secret of [pw, nativePasswordHash(pw), nativePasswordHash(pw).slice(2, 20)])
      expect(reported).not.toContain(secret);
  });
});

describe('names with shell or SQL metacharacters are refused before anything runs', () => {
  const hostile = [
    'x`; DROP DATABASE mysql; --',
    "x'; DROP USER root; --",
    'x$(touch /tmp/pwned)',
    'x;reboot',
    'x y',
  ];

  test.each(hostile)('%j', async (name) => {
    const exec = jest.spyOn(bed.fleet.pool, 'exec');
    try {
      const acts = createActivities(bed.fleet);
      const password = newPassword();
      const attempts: Promise<unknown>[] = [
        acts.ensureDatabase({ host: DB_HOST, db: name }),
        acts.dropDatabase({ host: DB_HOST, db: name }),
        acts.ensureDatabaseUser({ host: DB_HOST, user: name, db: DB, password }),
        acts.ensureDatabaseUser({ host: DB_HOST, user: USER, db: name, password }),
        acts.ensureDatabaseUser({ host: DB_HOST, user: USER, db: DB, password, fromHosts: [name] }),
        acts.dropDatabaseUser({ host: DB_HOST, user: name }),
        acts.rotateDatabasePassword({ host: DB_HOST, user: name, password }),
        acts.runSql({ host: DB_HOST, db: name, sql: 'SELECT 1' }),
        acts.tableRowCounts({ host: DB_HOST, db: name }),
        acts.snapshotDatabase({ host: DB_HOST, db: DB, name }),
        acts.restoreDatabaseSnapshot({ host: DB_HOST, db: name, name: 'ok' }),
        dumpDatabase(bed.fleet.pool, DB_HOST, name, fs.createWriteStream('/dev/null')),
      ];
      for (const a of attempts) {
        const err = await expectFailure(a, FailureType.InvalidInput);
        expect(err.nonRetryable).toBe(true);
      }
      expect(exec).not.toHaveBeenCalled();
    } finally {
      exec.mockRestore();
    }
  });
});

describe('dump and restore', () => {
  const weird = ['back`tick', "quo'te", 'sp ace', 'semi;colon'];

  beforeAll(async () => {
    const q = (t: string) => '`' + t.replace(/`/g, '``') + '`';
    const sql = [
      'CREATE TABLE seq (n INT PRIMARY KEY, payload VARCHAR(64))',
      'INSERT INTO seq SELECT seq, MD5(seq) FROM seq_1_to_5000',
      ...weird.flatMap((t, i) => [
        `CREATE TABLE ${q(t)} (id INT PRIMARY KEY, v TEXT)`,
        `INSERT INTO ${q(t)} SELECT seq, REPEAT('x''"\\\\', seq) FROM seq_1_to_${(i + 1) * 7}`,
      ]),
      'CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN 2 * x',
    ].join(';\n');
    await runSql(bed.fleet.pool, DB_HOST, DB, sql);
  });

  test('tableRowCounts: exact counts of every table, odd names included', async () => {
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).toEqual({
      'back`tick': 7,
      keepme: 1,
      "quo'te": 14,
      'semi;colon': 28,
      seq: 5000,
      'sp ace': 21,
    });
    await expectFailure(tableRowCounts(bed.fleet.pool, DB_HOST, `${RUN}-absent`), FailureType.Conflict);
  });

  test('dump, drop a table and the function, restore: the same row counts and the function is back', async () => {
    const before = await tableRowCounts(bed.fleet.pool, DB_HOST, DB);
    const file = path.join(tmpDir, 'site.sql.gz');
    const dump = await dumpDatabase(bed.fleet.pool, DB_HOST, DB, fs.createWriteStream(file));
    const onDisk = fs.readFileSync(file);
    expect(dump.bytes).toBe(onDisk.length);
    expect(dump.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'));
    expect(onDisk.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b])); // gzip

    server(`DROP TABLE \`${DB}\`.seq; DROP TABLE \`${DB}\`.\`sp ace\`; DROP FUNCTION \`${DB}\`.twice`);
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).not.toEqual(before);

    const restored = await restoreDatabase(bed.fleet.pool, DB_HOST, DB, fs.createReadStream(file));
    expect(restored).toEqual(dump);
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).toEqual(before);
    expect(server(`SELECT \`${DB}\`.twice(21)`)).toEqual([['42']]);

    // the same dump loads into a database of another name (created on the way)
    await restoreDatabase(bed.fleet.pool, DB_HOST, RESTORE_DB, fs.createReadStream(file));
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, RESTORE_DB)).toEqual(before);
  });

  test('dumping a database that does not exist fails (pipefail), and the destination is not ended as complete', async () => {
    const file = path.join(tmpDir, 'absent.sql.gz');
    const out = fs.createWriteStream(file);
    const err = await expectFailure(
      dumpDatabase(bed.fleet.pool, DB_HOST, `${RUN}-absent`, out),
      FailureType.CommandFailed,
    );
    expect(err.message).toMatch(/Unknown database/);
    expect(out.destroyed).toBe(true);
  });

  test('a destination that fails stops the dump on the host (no mysqldump left holding a snapshot)', async () => {
    await runSql(
      bed.fleet.pool,
      DB_HOST,
      RESTORE_DB,
      'CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(200)); ' +
        'INSERT INTO big SELECT seq, REPEAT(MD5(seq), 5) FROM seq_1_to_300000',
      60_000,
    );
    let written = 0;
    const failing = new Writable({
      write(chunk: Buffer, _enc, done) {
        written += chunk.length;
        done(written > 256 * 1024 ? new Error('disk full (simulated)') : null);
      },
    });
    const err = await expectFailure(
      dumpDatabase(bed.fleet.pool, DB_HOST, RESTORE_DB, failing),
      FailureType.CommandFailed,
    );
    expect(err.message).toContain('disk full (simulated)');
    const dumping = () =>
      bed.fleet.pool
        .exec(DB_HOST, ['pgrep', '-f', `mysqldump .*${RESTORE_DB}`], { check: false })
        .then((r) => r.stdout.trim());
    await eventually(async () => (await dumping()) === '', {
      what: 'the mysqldump on the DB host to end',
      timeoutMs: 5000,
      intervalMs: 100,
    });
    expect(await dumping()).toBe('');
  });

  test('a damaged dump fails the restore (gunzip under pipefail)', async () => {
    const good = fs.readFileSync(path.join(tmpDir, 'site.sql.gz'));
    const bad = path.join(tmpDir, 'truncated.sql.gz');
    fs.writeFileSync(bad, good.subarray(0, Math.floor(good.length / 2)));
    await expectFailure(
      restoreDatabase(bed.fleet.pool, DB_HOST, RESTORE_DB, fs.createReadStream(bad)),
      FailureType.CommandFailed,
    );
  });
});

describe('snapshots on the DB host', () => {
  test('snapshot twice keeps the first; restore makes the database exactly the snapshot', async () => {
    const name = 'pre-deploy-1';
    const { file, checksum } = snapshotPaths(DB, name);
    const counts = await tableRowCounts(bed.fleet.pool, DB_HOST, DB);
    const first = await snapshotDatabase(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    expect(first).toMatchObject({ created: true, path: file });
    // the file on the host is what the activity reports
    const onHost = testbed.exec(DB_HOST, ['sha256sum', file]).split(' ')[0];
    expect(onHost).toBe(first.sha256);
    expect(testbed.exec(DB_HOST, ['cat', checksum])).toBe(`${first.sha256}  ${name}.sql.gz\n`);
    expect(testbed.exec(DB_HOST, ['stat', '-c', '%a %s', file]).trim()).toBe(`600 ${first.bytes}`);

    // the database moves on: more rows, a new table
    server(
      `INSERT INTO \`${DB}\`.seq SELECT seq, 'later' FROM \`${DB}\`.seq_5001_to_5100; CREATE TABLE \`${DB}\`.added (x INT)`,
    );
    const second = await snapshotDatabase(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    expect(second).toEqual({ ...first, created: false });
    // no temporary file left behind
    expect(
      testbed
        .exec(DB_HOST, ['ls', '-A', snapshotPaths(DB, name).dir])
        .trim()
        .split('\n')
        .sort(),
    ).toEqual([`${name}.sql.gz`, `${name}.sql.gz.sha256`]);

    const restored = await restoreSnapshot(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    expect(restored.sha256).toBe(first.sha256);
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).toEqual(counts);
    // twice: the same state
    await restoreSnapshot(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).toEqual(counts);
    // grants survive the drop and recreate: the user still gets in
    expect(server(`SELECT COUNT(*) FROM mysql.db WHERE User = '${USER}'`)).toEqual([['1']]);
  });

  test('a missing or damaged snapshot is a Conflict and leaves the database untouched', async () => {
    await expectFailure(
      restoreSnapshot(bed.fleet.pool, { host: DB_HOST, db: DB, name: 'never-taken' }),
      FailureType.Conflict,
    );
    const name = 'damaged';
    await snapshotDatabase(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    const { file } = snapshotPaths(DB, name);
    testbed.exec(DB_HOST, ['sh', '-c', 'printf x >> "$1"', 'sh', file]);
    server(`CREATE TABLE \`${DB}\`.canary (x INT)`);
    const before = await tableRowCounts(bed.fleet.pool, DB_HOST, DB);
    await expectFailure(
      restoreSnapshot(bed.fleet.pool, { host: DB_HOST, db: DB, name }),
      FailureType.Conflict,
    );
    expect(await tableRowCounts(bed.fleet.pool, DB_HOST, DB)).toEqual(before);
    // and taking the snapshot again replaces the damaged file instead of trusting it
    const again = await snapshotDatabase(bed.fleet.pool, { host: DB_HOST, db: DB, name });
    expect(again.created).toBe(true);
  });
});

describe('through Temporal', () => {
  const retry: RetryPolicy = { initialInterval: '300ms', backoffCoefficient: 1, maximumAttempts: 30 };

  async function startedAttempt(workflowId: string): Promise<number> {
    const history = await bed.env.client.workflow.getHandle(workflowId).fetchHistory();
    const started = history.events?.find((e) => e.activityTaskStartedEventAttributes);
    return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
  }

  test('bad input fails once, without retries', async () => {
    const workflowId = `${RUN}-bad-input`;
    await withWorker(bed, async (taskQueue) => {
      const err = await bed.env.client.workflow
        .execute(runActivity, {
          taskQueue,
          workflowId,
          args: [{ activity: 'ensureDatabase', args: [{ host: DB_HOST, db: 'x`y' }], options: { retry } }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause?.cause as ApplicationFailure;
      expect(cause.type).toBe(FailureType.InvalidInput);
    });
    expect(await startedAttempt(workflowId)).toBe(1);
  });

  test('ensureDatabase retried while the server is down succeeds once it is back', async () => {
    const workflowId = `${RUN}-retry`;
    testbed.stop('host3', 'mariadb');
    try {
      await withWorker(bed, async (taskQueue) => {
        const handle = await bed.env.client.workflow.start(runActivity, {
          taskQueue,
          workflowId,
          args: [{ activity: 'ensureDatabase', args: [{ host: 'host3', db: RETRY_DB }], options: { retry } }],
        });
        await new Promise((r) => setTimeout(r, 1500));
        testbed.start('host3', 'mariadb');
        expect(await handle.result()).toMatchObject({ db: RETRY_DB, created: true });
      });
    } finally {
      testbed.start('host3', 'mariadb');
      server(`DROP DATABASE IF EXISTS \`${RETRY_DB}\``, 'host3');
    }
    expect(await startedAttempt(workflowId)).toBeGreaterThan(1);
  });
});
