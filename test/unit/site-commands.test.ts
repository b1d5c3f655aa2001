import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import {
  ensureSecretArgv,
  generatePassword,
  parseListeningPorts,
  PASSWORD_LENGTH,
  readSecretArgv,
  removeSecretArgv,
  secretPaths,
  SITE_DATABASES_SQL,
  STORED_PASSWORD,
} from '../../activities/site/commands';
import { loadProfile } from '../../activities/site/profiles';
import { runLocal as run } from '../support/runLocal';

const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);

describe('the DB password', () => {
  test('32 characters of letters and digits, different every time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = generatePassword();
      expect(p).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(STORED_PASSWORD.test(p)).toBe(true);
      seen.add(p);
    }
    expect(seen.size).toBe(200);
    expect(PASSWORD_LENGTH).toBe(32);
  });

  test('never on a command line: the argv holds paths only', () => {
    const argv = ensureSecretArgv('acme');
    expect(argv.slice(-3)).toEqual([
      '/srv/qm/secrets',
      '/srv/qm/secrets/acme',
      '/srv/qm/secrets/acme/db-password',
    ]);
    expect(readSecretArgv('acme').at(-1)).toBe('/srv/qm/secrets/acme/db-password');
    expect(removeSecretArgv('acme').at(-1)).toBe('/srv/qm/secrets/acme');
  });

  describe('the ensure script, run here on a temporary root', () => {
    let tmp: string;
    let root: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-secret-'));
      root = path.join(tmp, 'srv', 'qm', 'secrets');
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    test('keeps the first password, 0700/0600, and prints it; a second run prints the same', async () => {
      const [code, out] = await run(ensureSecretArgv('acme', root), 'first-password-0123456789');
      expect(code).toBe(0);
      expect(out).toBe('first-password-0123456789');
      const p = secretPaths('acme', root);
      expect(mode(p.root)).toBe('700');
      expect(mode(p.dir)).toBe('700');
      expect(mode(p.password)).toBe('600');
      expect(mode(path.join(tmp, 'srv', 'qm'))).toBe('755'); // the parents are not made private
      const [, again] = await run(ensureSecretArgv('acme', root), 'another-password-0123456789');
      expect(again).toBe('first-password-0123456789');
      expect(fs.readdirSync(p.dir)).toEqual(['db-password']); // no temporary file left
      const [rcode, read] = await run(readSecretArgv('acme', root));
      expect([rcode, read]).toEqual([0, 'first-password-0123456789']);
    });

    test('ten runs at once agree on one password', async () => {
      const outs = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          run(ensureSecretArgv('acme', root), `password-number-${i}-abcdefgh`),
        ),
      );
      const printed = new Set(outs.map(([code, out]) => (expect(code).toBe(0), out)));
      expect(printed.size).toBe(1);
      expect(fs.readFileSync(secretPaths('acme', root).password, 'utf8')).toBe([...printed][0]);
    });

    test('read of a missing secret exits 3; remove is removed then absent', async () => {
      expect((await run(readSecretArgv('nope', root)))[0]).toBe(3);
      await run(ensureSecretArgv('acme', root), 'first-password-0123456789');
      expect((await run(removeSecretArgv('acme', root)))[1].trim()).toBe('removed');
      expect((await run(removeSecretArgv('acme', root)))[1].trim()).toBe('absent');
      expect(fs.existsSync(secretPaths('acme', root).dir)).toBe(false);
    });
  });
});

describe('placement look-ups', () => {
  test('site databases: a LIKE with an escaped underscore', () => {
    expect(SITE_DATABASES_SQL).toContain("SHOW DATABASES LIKE 'site\\_%';");
  });

  test('listening ports from ss -Htln', () => {
    const out = [
      'LISTEN 0      4096         0.0.0.0:20000      0.0.0.0:*',
      'LISTEN 0      128       10.77.5.12:22         0.0.0.0:*',
      'LISTEN 0      4096            [::]:20000         [::]:*',
      'LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*',
      '',
    ].join('\n');
    expect(parseListeningPorts(out)).toEqual([22, 53, 20000]);
    // and the real one parses
    let real = '';
    try {
      real = execFileSync('ss', ['-Htln'], { encoding: 'utf8' });
    } catch {
      return;
    }
    for (const p of parseListeningPorts(real)) expect(p).toBeGreaterThan(0);
  });
});

describe('loadProfile', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-profiles-'));
    fs.writeFileSync(
      path.join(dir, 'good.yaml'),
      'name: good\ncontainers:\n  app: { image: local/busybox:1, port: 80 }\n',
    );
    fs.writeFileSync(
      path.join(dir, 'noport.yaml'),
      'name: noport\ncontainers:\n  app: { image: local/busybox:1 }\n',
    );
    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'name: [broken\n');
    fs.writeFileSync(
      path.join(dir, 'renamed.yaml'),
      'name: other\ncontainers:\n  app: { image: local/busybox:1, port: 80 }\n',
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('InvalidInput');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    return err as ApplicationFailure;
  }

  test('the shipped profiles load', async () => {
    expect((await loadProfile('test-busybox')).containers.app.port).toBe(80);
    expect((await loadProfile('drupal-civicrm')).health.path).toBe('/user/login');
    const php = await loadProfile('test-php');
    expect(php.hooks.postDeploy).toEqual([['php', '/var/www/app/cli.php', 'migrate']]);
    expect(Object.keys(php.containers).sort()).toEqual(['app', 'cron']);
  });

  test('defaults applied', async () => {
    const p = await loadProfile('good', dir);
    expect(p.health).toEqual({ path: '/', expectStatus: 200 });
    expect(p.hooks).toEqual({ postDeploy: [] });
  });

  test('an unknown name lists the known ones', async () => {
    const f = await failureOf(loadProfile('missing', dir));
    expect(f.message).toBe('unknown profile "missing" (known: broken, good, noport, renamed)');
  });

  test('a profile failing the schema names the field; bad YAML and a wrong name are InvalidInput', async () => {
    expect((await failureOf(loadProfile('noport', dir))).message).toMatch(
      /^profile noport is invalid: containers\.app\.port: /,
    );
    expect((await failureOf(loadProfile('broken', dir))).message).toMatch(/is not valid YAML/);
    expect((await failureOf(loadProfile('renamed', dir))).message).toMatch(
      /name: is "other", not the file's name/,
    );
  });
});
