import path from 'node:path';
import { loadProfile } from '../../activities/site/profiles';
import {
  cachePort,
  RenderError,
  renderSiteContainer,
  substitute,
  usesPlaceholder,
  type RenderInput,
} from '../../activities/site/render';
import { containerCreateOptions } from '../../activities/docker/commands';
import { Profile, type ProfileInput } from '../../schema/profile';
import { SiteSpec, type Placement } from '../../schema/site';

const PROFILES = path.join(__dirname, '..', '..', 'profiles');
const PASSWORD = 'Pw0123456789abcdefghijklmnopqrst';

const site = SiteSpec.parse({
  siteId: 'acme',
  customerId: 'cust-1',
  plan: 'business',
  profile: 'test-busybox',
  domains: ['acme.example.org', 'www.acme.example.org'],
  git: { repo: 'customers/acme.git' },
  appServers: 2,
});
const placement: Placement = {
  appHosts: ['host2', 'host3'],
  dbHost: 'host1',
  storageHost: 'host1',
  proxyHosts: ['host1'],
  cacheHost: 'host2',
  port: 20007,
};
const values = { dbHostAddress: '10.0.0.11', cacheHostAddress: '10.0.0.12', dbPassword: PASSWORD };

async function input(role: RenderInput['role'], profileName = 'test-busybox'): Promise<RenderInput> {
  return { profile: await loadProfile(profileName, PROFILES), role, site, placement, release: 'r42', values };
}

describe('renderSiteContainer with the test profile', () => {
  test('app: name, labels, network, published port, files mount, memory, healthcheck', async () => {
    const spec = renderSiteContainer(await input('app'));
    expect(spec.name).toBe('site-acme-app');
    expect(spec.image).toBe('local/busybox:1');
    expect(spec.labels).toEqual({
      'qm.site': 'acme',
      'qm.role': 'app',
      'qm.release': 'r42',
      'qm.customer': 'cust-1',
    });
    expect(spec.network).toBe('site-acme');
    expect(spec.ports).toEqual([{ containerPort: 80, hostPort: 20007, protocol: 'tcp' }]);
    expect(spec.mounts).toEqual([
      { type: 'bind', source: '/srv/qm/sites/acme/files', target: '/files', readOnly: false },
    ]);
    expect(spec.memoryMb).toBe(32);
    expect(spec.healthcheck?.test).toEqual(['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/health']);
    expect(spec.restart).toBe('unless-stopped');
  });

  test('app: placeholders filled in env, the shell variables in cmd left alone', async () => {
    const spec = renderSiteContainer(await input('app'));
    expect(spec.env).toEqual({
      SITE_ID: 'acme',
      DB_HOST: '10.0.0.11',
      DB_NAME: 'site_acme',
      DB_USER: 'site_acme',
      DB_PASSWORD: PASSWORD,
      CACHE_HOST: '10.0.0.12',
      RELEASE: 'r42',
    });
    expect(spec.cmd?.[2]).toContain('echo "site $SITE_ID release $RELEASE on $(hostname)"');
  });

  test('cache publishes its port on placement.port + 10000, mounts nothing; cron publishes nothing', async () => {
    const cache = renderSiteContainer(await input('cache'));
    expect(cache.name).toBe('site-acme-cache');
    expect(cache.ports).toEqual([{ containerPort: 11211, hostPort: 30007, protocol: 'tcp' }]);
    expect(cache.mounts).toEqual([]);
    expect(cache.labels['qm.role']).toBe('cache');
    const cron = renderSiteContainer(await input('cron'));
    expect(cron.name).toBe('site-acme-cron');
    expect(cron.ports).toEqual([]);
    expect(cron.mounts).toEqual([
      { type: 'bind', source: '/srv/qm/sites/acme/files', target: '/files', readOnly: false },
    ]);
  });

  test('the same input renders the same spec (so ensureContainer finds it unchanged)', async () => {
    const a = containerCreateOptions(renderSiteContainer(await input('app')));
    const b = containerCreateOptions(renderSiteContainer(await input('app')));
    expect(a).toEqual(b);
    const other = containerCreateOptions(renderSiteContainer({ ...(await input('app')), release: 'r43' }));
    expect(other.Labels!['qm.spec-hash']).not.toBe(a.Labels!['qm.spec-hash']);
  });

  test('the production profile renders every role, with the published cache port in the app env', async () => {
    const app = renderSiteContainer(await input('app', 'drupal-civicrm'));
    expect(app.env).toMatchObject({
      DRUPAL_BASE_URL: 'https://acme.example.org',
      DB_PORT: '3306',
      MEMCACHE_HOST: '10.0.0.12',
      MEMCACHE_PORT: '30007',
      CIVICRM_DB_NAME: 'site_acme',
    });
    expect(app.mounts[0]!.target).toBe('/var/www/html/web/sites/default/files');
    expect(renderSiteContainer(await input('cron', 'drupal-civicrm')).env.DB_PASSWORD).toBe(PASSWORD);
    expect(renderSiteContainer(await input('cache', 'drupal-civicrm')).cmd).toEqual([
      'memcached',
      '-m',
      '128',
      '-U',
      '0',
    ]);
  });
});

function profileWith(
  app: Partial<ProfileInput['containers']['app']>,
  more: Partial<ProfileInput['containers']> = {},
) {
  return Profile.parse({
    name: 'p',
    containers: { app: { image: 'local/busybox:1', port: 80, ...app }, ...more },
  });
}

describe('renderSiteContainer refuses', () => {
  const base = { role: 'app' as const, site, placement, release: 'r1', values };

  test('an unknown placeholder, naming the field (never a value)', () => {
    const profile = profileWith({ env: { A: 'x{{db.pasword}}' } });
    expect(() => renderSiteContainer({ ...base, profile })).toThrow(
      new RenderError('containers.app.env.A: unknown placeholder {{db.pasword}}', 'containers.app.env.A'),
    );
    const inCmd = profileWith({ cmd: ['sh', '-c', 'echo {{nope}}'] });
    expect(() => renderSiteContainer({ ...base, profile: inCmd })).toThrow(
      /containers\.app\.cmd\.2: unknown placeholder/,
    );
  });

  test('{{cache.*}} in a profile without a cache, and {{db.password}} when none was resolved', () => {
    const profile = profileWith({ env: { C: '{{cache.port}}' } });
    expect(() => renderSiteContainer({ ...base, profile })).toThrow(/\{\{cache\.port\}\} has no value here/);
    const pw = profileWith({ env: { P: '{{db.password}}' } });
    const noPassword = { ...values, dbPassword: undefined };
    expect(() => renderSiteContainer({ ...base, profile: pw, values: noPassword })).toThrow(/db\.password/);
    try {
      renderSiteContainer({ ...base, profile: pw, values: noPassword });
    } catch (err) {
      expect((err as Error).message).not.toContain(PASSWORD);
    }
  });

  test('a role the profile does not have', () => {
    expect(() => renderSiteContainer({ ...base, role: 'cron', profile: profileWith({}) })).toThrow(
      'profile p has no cron container',
    );
  });

  test('a cache port beyond 65535 (placement port too high)', () => {
    const profile = profileWith({}, { cache: { image: 'local/busybox:1', port: 11211 } });
    expect(() =>
      renderSiteContainer({ ...base, role: 'cache', profile, placement: { ...placement, port: 60000 } }),
    ).toThrow(/ports\.0\.hostPort/);
    expect(cachePort({ ...placement, port: 20000 })).toBe(30000);
  });
});

describe('substitute', () => {
  test('one pass: a value holding braces is not expanded again; spaces inside braces are allowed', () => {
    expect(substitute('a{{ x }}b{{y}}', { x: '{{y}}', y: '1' }, 'f')).toBe('a{{y}}b1');
    expect(substitute('no placeholders {x} {{', {}, 'f')).toBe('no placeholders {x} {{');
  });

  test('usesPlaceholder finds {{db.password}} only where it is used', async () => {
    const profile = await loadProfile('test-busybox', PROFILES);
    expect(usesPlaceholder(profile, 'app', 'db.password')).toBe(true);
    expect(usesPlaceholder(profile, 'cache', 'db.password')).toBe(false);
    expect(usesPlaceholder(profile, 'cron', 'db.password')).toBe(false);
  });
});
