import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { clientOptionFile } from '../../activities/db/commands';
import { FailureType } from '../../activities/errors';
import { makeProxyActivities } from '../../activities/proxy/activities';
import { makeSiteActivities } from '../../activities/site/activities';
import { secretPaths } from '../../activities/site/commands';
import { PORT_RANGE } from '../../activities/site/placement';
import { makeStorageActivities } from '../../activities/storage/activities';
import { archivePath, storagePaths } from '../../activities/storage/commands';
import type { Profile } from '../../schema/profile';
import { SiteSpec, siteNames, type Placement } from '../../schema/site';
import { openBed, type Bed } from '../support/bed';
import { withWorker } from '../support/temporal';
import { testbed } from '../../dev/fleet';
import { runActivity } from '../workflows';

/**
 * The site activities on the real bed (host1: proxy, db, storage; host2 and host3: app, cache, db),
 * with profiles/test-busybox.yaml. Outcomes are checked on the hosts themselves through `testbed
 * exec` (which bypasses our SSH code), never with what the activities say they did.
 */
const SITE = `t-${randomBytes(4).toString('hex')}`;
const NAMES = siteNames(SITE);
const PATHS = storagePaths(SITE);
const RELEASE = 'r1';
const DOMAIN = `${SITE}.test.example`;

let bed: Bed;
let site: ReturnType<typeof makeSiteActivities>;
let storage: ReturnType<typeof makeStorageActivities>;
let proxy: ReturnType<typeof makeProxyActivities>;
let placement: Placement;
let profile: Profile;
const spec = SiteSpec.parse({
  siteId: SITE,
  customerId: 'cust-test',
  plan: 'starter',
  profile: 'test-busybox',
  domains: [DOMAIN],
  git: { repo: 'customers/test.git' },
  appServers: 2,
});

/** A shell script on a host, outside our code (testbed exec): its stdout; throws on a non-zero exit. */
function sh(host: string, script: string, ...args: string[]): string {
  return testbed.exec(host, ['sh', '-c', script, 'qm-test', ...args]);
}
/** Whether a script exits 0 on the host. */
function ok(host: string, script: string, ...args: string[]): boolean {
  try {
    sh(host, script, ...args);
    return true;
  } catch {
    return false;
  }
}
const docker = (host: string, ...args: string[]) =>
  testbed.exec(host, ['docker', '-H', 'unix:///run/docker.sock', ...args]);
const siteContainersOn = (host: string) =>
  docker(host, 'ps', '-a', '--filter', `label=qm.site=${SITE}`, '--format', '{{.Names}}')
    .split('\n')
    .filter(Boolean)
    .sort();
/**
 * GET from inside the host (bash's /dev/tcp: the bed's hosts share this machine's binaries, whose
 * static busybox wget crashes on a reply); the body of a 200, else throws.
 */
const GET_SCRIPT = `{ exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || exit 1
printf 'GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' "$2" >&3
timeout 5 cat <&3`;
function fetchOn(host: string, path: string): string {
  const reply = testbed.exec(host, ['bash', '-c', GET_SCRIPT, 'qm-get', String(placement.port), path]);
  const [head = '', ...body] = reply.split('\r\n\r\n');
  if (!/^HTTP\/1\.[01] 200 /.test(head)) throw new Error(`GET ${path} on ${host}: ${head.split('\r\n')[0]}`);
  return body.join('\r\n\r\n');
}
const canFetch = (host: string, path: string) => {
  try {
    fetchOn(host, path);
    return true;
  } catch {
    return false;
  }
};
/** The sshfs processes of this site's mount on the host (the bed's hosts share one PID space). */
const sshfsPids = (host: string) =>
  sh(
    host,
    'me=$(readlink /proc/self/ns/mnt); for p in $(pgrep -x sshfs); do ' +
      '[ "$(readlink /proc/$p/ns/mnt)" = "$me" ] && grep -qF -- "$1" /proc/$p/cmdline && echo $p; done; true',
    PATHS.mount,
  )
    .split('\n')
    .filter(Boolean);

async function failureOf(p: Promise<unknown>, type: string): Promise<ApplicationFailure> {
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
  site = makeSiteActivities(bed.fleet);
  storage = makeStorageActivities(bed.fleet);
  proxy = makeProxyActivities(bed.fleet);
});

afterAll(async () => {
  // every step tolerates what is already gone; then check by hand that nothing is left
  const appHosts = ['host2', 'host3'];
  if (placement) {
    await proxy.removeSiteRoute({ host: 'host1', siteId: SITE }).catch(() => undefined);
    for (const host of appHosts) await site.removeSiteContainers({ siteId: SITE, host });
    for (const host of appHosts) await storage.unmountSiteFiles({ siteId: SITE, host });
    await storage.removeSiteFiles({ siteId: SITE, storageHost: placement.storageHost });
    await site.dropSiteDatabase({ siteId: SITE, dbHost: placement.dbHost });
  }
  await proxy.stopProxy({ host: 'host1', graceSeconds: 5 }).catch(() => undefined);
  // the per-host storage access mountSiteFiles set up (kept across sites in production)
  for (const host of ['host2', 'host3'])
    sh(host, 'rm -f /root/.ssh/qm_storage_ed25519* /root/.ssh/qm_known_hosts*');
  sh(
    'host1',
    'f=/root/.ssh/authorized_keys; [ ! -e $f ] || { grep -v qm-storage@ $f > $f.t || true; mv $f.t $f; }',
  );
  for (const host of ['host1', 'host2', 'host3']) {
    sh(
      host,
      'rm -rf -- "$1" "$2" "$3"',
      PATHS.archiveDir,
      PATHS.siteDir,
      `/srv/qm/snapshots/${NAMES.database}`,
    );
    expect(siteContainersOn(host)).toEqual([]);
    expect(sh(host, 'grep -c -- "$1" /proc/self/mountinfo || true', SITE).trim()).toBe('0');
    expect(
      ok(
        host,
        'test -e "$1" || test -e "$2" || test -e "$3"',
        PATHS.files,
        PATHS.siteDir,
        secretPaths(SITE).dir,
      ),
    ).toBe(false);
    const dbs = testbed.exec(host, [
      'mariadb',
      '--batch',
      '--skip-column-names',
      '-e',
      `SHOW DATABASES LIKE '${NAMES.database}'`,
    ]);
    expect(dbs.trim()).toBe('');
  }
  await bed.close();
});

describe(`site ${SITE} on the real bed`, () => {
  test('loadProfile: the test profile; an unknown one is InvalidInput', async () => {
    profile = await site.loadProfile({ name: 'test-busybox' });
    expect(profile.containers.app.image).toBe('local/busybox:1');
    await failureOf(site.loadProfile({ name: 'no-such-profile' }), FailureType.InvalidInput);
    await failureOf(site.loadProfile({ name: '../etc/passwd' } as never), FailureType.InvalidInput);
  });

  test('placeSite: distinct app hosts, a free port, stable on a re-run; too many app servers is InvalidInput', async () => {
    placement = await site.placeSite({ siteId: SITE, appServers: 2 });
    expect(placement.appHosts).toEqual(['host2', 'host3']);
    expect(placement.storageHost).toBe('host1');
    expect(placement.proxyHosts).toEqual(['host1']);
    expect(placement.cacheHost).toBe('host2');
    expect(['host1', 'host2', 'host3']).toContain(placement.dbHost);
    expect(placement.port).toBeGreaterThanOrEqual(PORT_RANGE.first);
    expect(placement.port).toBeLessThanOrEqual(PORT_RANGE.last);
    for (const host of placement.appHosts)
      expect(ok(host, 'ss -Htln | grep -q ":$1 "', String(placement.port))).toBe(false);
    expect(await site.placeSite({ siteId: SITE, appServers: 2 })).toEqual(placement);
    const f = await failureOf(site.placeSite({ siteId: SITE, appServers: 3 }), FailureType.InvalidInput);
    expect(f.message).toContain('the fleet has 2 app host(s) (host2, host3)');
  });

  describe('database', () => {
    let password: string;

    test('ensureSiteDatabase twice: same password, kept 0600 in a 0700 dir, never returned', async () => {
      const input = { siteId: SITE, dbHost: placement.dbHost, clientHosts: placement.appHosts };
      const first = await site.ensureSiteDatabase(input);
      expect(first).toEqual({ database: NAMES.database, user: NAMES.dbUser });
      const file = secretPaths(SITE).password;
      password = sh(placement.dbHost, 'cat -- "$1"', file);
      expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(
        sh(placement.dbHost, 'stat -c "%a %U" -- "$1" "$2"', secretPaths(SITE).dir, file).trim().split('\n'),
      ).toEqual(['700 root', '600 root']);
      const second = await site.ensureSiteDatabase(input);
      expect(second).toEqual(first);
      expect(sh(placement.dbHost, 'cat -- "$1"', file)).toBe(password);
      expect(JSON.stringify([first, second])).not.toContain(password);
    });

    test('the app user logs in over TCP from each app host with the kept password, and not from elsewhere', async () => {
      const address = bed.fleet.pool.host(placement.dbHost).address;
      const login = (from: string) =>
        bed.fleet.pool.exec(
          from,
          [
            'mariadb',
            '--defaults-extra-file=/dev/stdin',
            '--batch',
            '--skip-column-names',
            '-h',
            address,
            '-e',
            'SELECT DATABASE(), CURRENT_USER()',
          ],
          {
            stdin: clientOptionFile({ user: NAMES.dbUser, password }) + `database=${NAMES.database}\n`,
            check: false,
            timeoutMs: 20_000,
          },
        );
      for (const host of placement.appHosts) {
        const r = await login(host);
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(
          `${NAMES.database}\t${NAMES.dbUser}@${bed.fleet.pool.host(host).address}`,
        );
      }
      const outsider = await login('host1');
      expect(outsider.code).not.toBe(0);
      expect(outsider.stderr).toMatch(/Access denied|is not allowed to connect/);
    });

    test('through Temporal: the password is nowhere in the workflow history', async () => {
      const workflowId = `${SITE}-db`;
      await withWorker(bed, (taskQueue) =>
        bed.env.client.workflow.execute(runActivity, {
          taskQueue,
          workflowId,
          args: [
            {
              activity: 'ensureSiteDatabase',
              args: [{ siteId: SITE, dbHost: placement.dbHost, clientHosts: placement.appHosts }],
            },
          ],
        }),
      );
      const history = await bed.env.client.workflow.getHandle(workflowId).fetchHistory();
      // payloads are base64 in the history's JSON form: decode every one of them
      const json = JSON.stringify(history, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
      );
      const decoded = [...json.matchAll(/"(?:data|encoding)":"([A-Za-z0-9+/=]+)"/g)].map((m) =>
        Buffer.from(m[1]!, 'base64').toString('utf8'),
      );
      const text = json + decoded.join('\n');
      expect(text).toContain(NAMES.dbUser); // the result is in there
      expect(text).not.toContain(password);
    });

    test('snapshotSiteDatabase: a file on the DB host with its checksum', async () => {
      const snap = await site.snapshotSiteDatabase({
        siteId: SITE,
        dbHost: placement.dbHost,
        name: 'before-test',
      });
      expect(snap.path).toBe(`/srv/qm/snapshots/${NAMES.database}/before-test.sql.gz`);
      expect(snap.bytes).toBeGreaterThan(0);
      expect(sh(placement.dbHost, 'sha256sum < "$1"', snap.path).split(' ')[0]).toBe(snap.sha256);
    });
  });

  describe('files', () => {
    test('ensureSiteFiles twice: created, then existing', async () => {
      const input = { siteId: SITE, storageHost: placement.storageHost };
      expect(await storage.ensureSiteFiles(input)).toEqual({ path: PATHS.files, action: 'created' });
      expect(await storage.ensureSiteFiles(input)).toEqual({ path: PATHS.files, action: 'existing' });
      expect(ok('host1', 'test -d "$1"', PATHS.files)).toBe(true);
    });

    test('mountSiteFiles on both app hosts (twice: unchanged); a file written on host2 is read on host3 and on the storage host', async () => {
      const mounts = await Promise.all(
        placement.appHosts.map((host) =>
          storage.mountSiteFiles({ siteId: SITE, host, storageHost: placement.storageHost }),
        ),
      );
      const source = `root@${bed.fleet.pool.host('host1').address}:${PATHS.files}`;
      for (const m of mounts) expect(m).toEqual({ mountPoint: PATHS.mount, source, action: 'mounted' });
      for (const host of placement.appHosts)
        expect(
          (await storage.mountSiteFiles({ siteId: SITE, host, storageHost: placement.storageHost })).action,
        ).toBe('unchanged');

      sh('host2', 'echo "written on host2" > "$1/hello.txt"', PATHS.mount);
      expect(sh('host3', 'cat -- "$1/hello.txt"', PATHS.mount)).toBe('written on host2\n');
      expect(sh('host1', 'cat -- "$1/hello.txt"', PATHS.files)).toBe('written on host2\n');
      expect(sh('host2', 'grep -F -- " $1 " /proc/self/mountinfo', PATHS.mount)).toMatch(
        / - fuse\.sshfs root@/,
      );
    });

    test('the app hosts’ keys are authorized for SFTP only, each once, and the private keys stay on the app hosts', () => {
      const byHost = (l: string) => l.slice(l.lastIndexOf('@') + 1);
      // this bed's hosts only: a bed once brought up with more hosts leaves theirs on host1
      const ours = new Set(bed.fleet.hosts.map((h) => h.name));
      const lines = sh('host1', 'grep -F qm-storage@ /root/.ssh/authorized_keys')
        .trim()
        .split('\n')
        .filter((l) => ours.has(byHost(l)))
        .sort((a, b) => byHost(a).localeCompare(byHost(b))); // in host order, whichever mounted first
      expect(lines).toHaveLength(2);
      lines.forEach((l, i) =>
        expect(l).toMatch(
          new RegExp(`^restrict,command="internal-sftp" ssh-ed25519 \\S+ qm-storage@host${i + 2}$`),
        ),
      );
      expect(ok('host1', 'test -e /root/.ssh/qm_storage_ed25519')).toBe(false);
      // a shell with that key is refused: the key speaks SFTP and nothing else
      const out = sh(
        'host2',
        'ssh -F /dev/null -i /root/.ssh/qm_storage_ed25519 -o UserKnownHostsFile=/root/.ssh/qm_known_hosts ' +
          '-o StrictHostKeyChecking=yes -o BatchMode=yes root@"$1" "echo SHELL; id" 2>&1 || true',
        bed.fleet.pool.host('host1').address,
      );
      expect(out).not.toContain('SHELL');
      expect(out).toContain('sftp connections only');
    });

    test('a dead mount (its sshfs killed) is detached and mounted again', async () => {
      const pids = sshfsPids('host2');
      expect(pids).toHaveLength(1);
      sh('host2', 'kill -KILL "$1"', pids[0]!);
      expect(ok('host2', 'stat -- "$1/hello.txt" 2>/dev/null', PATHS.mount)).toBe(false);
      const r = await storage.mountSiteFiles({
        siteId: SITE,
        host: 'host2',
        storageHost: placement.storageHost,
      });
      expect(r.action).toBe('remounted');
      expect(sh('host2', 'cat -- "$1/hello.txt"', PATHS.mount)).toBe('written on host2\n');
      expect(sh('host2', 'grep -cF -- " $1 " /proc/self/mountinfo', PATHS.mount).trim()).toBe('1');
    });
  });

  describe('containers', () => {
    const ensure = (host: string, role: 'app' | 'cache' | 'cron', release = RELEASE) =>
      site.ensureSiteContainer({ siteId: SITE, host, role, profile, site: spec, placement, release });

    test('a host outside the placement is InvalidInput', async () => {
      await failureOf(ensure('host1', 'app'), FailureType.InvalidInput);
      await failureOf(ensure('host3', 'cache'), FailureType.InvalidInput);
    });

    test('cache, then app on both hosts: healthy, serving the site and release, seeing the shared files', async () => {
      expect((await ensure(placement.cacheHost, 'cache')).action).toBe('created');
      const apps = await Promise.all(placement.appHosts.map((h) => ensure(h, 'app')));
      for (const a of apps) expect(a.action).toBe('created');
      for (const host of placement.appHosts) {
        expect(fetchOn(host, '/')).toMatch(new RegExp(`^site ${SITE} release ${RELEASE} on `));
        expect(fetchOn(host, '/files/hello.txt')).toBe('written on host2\n');
        expect(docker(host, 'inspect', '-f', '{{.State.Health.Status}}', NAMES.container('app')).trim()).toBe(
          'healthy',
        );
      }
      expect(siteContainersOn('host2')).toEqual([NAMES.container('app'), NAMES.container('cache')].sort());
      expect(siteContainersOn('host3')).toEqual([NAMES.container('app')]);
      // the labels, and the kept password in the env (and only there)
      const labels = JSON.parse(
        docker('host3', 'inspect', '-f', '{{json .Config.Labels}}', NAMES.container('app')),
      ) as Record<string, string>;
      expect(labels).toMatchObject({
        'qm.site': SITE,
        'qm.role': 'app',
        'qm.release': RELEASE,
        'qm.customer': 'cust-test',
      });
      const env = docker('host3', 'inspect', '-f', '{{json .Config.Env}}', NAMES.container('app'));
      expect(env).toContain(`DB_PASSWORD=${sh(placement.dbHost, 'cat -- "$1"', secretPaths(SITE).password)}`);
      // a file the app writes lands on the storage host
      docker('host3', 'exec', NAMES.container('app'), 'sh', '-c', 'echo from-container > /files/c.txt');
      expect(sh('host1', 'cat -- "$1/c.txt"', PATHS.files)).toBe('from-container\n');
    });

    test('the second run changes nothing; placement stays the same with the site running', async () => {
      const before = docker('host2', 'inspect', '-f', '{{.Id}}', NAMES.container('app')).trim();
      const again = await ensure('host2', 'app');
      expect(again).toEqual({ id: before, action: 'unchanged' });
      expect(await site.placeSite({ siteId: SITE, appServers: 2 })).toEqual(placement);
    });

    test('checkSiteHealth through the proxy; a mismatch is Unhealthy with the status and an excerpt', async () => {
      await proxy.ensureProxy({ host: 'host1' });
      await proxy.putSiteRoute({
        host: 'host1',
        route: {
          siteId: SITE,
          domains: [DOMAIN],
          backends: placement.appHosts.map((h) => ({
            host: h,
            address: bed.fleet.pool.host(h).address,
            port: placement.port,
            state: 'active' as const,
          })),
          mode: 'active',
        },
      });
      const health = profile.health;
      const r = await site.checkSiteHealth({
        proxyHost: 'host1',
        domain: DOMAIN,
        path: health.path,
        expectStatus: health.expectStatus,
        expectText: health.expectText,
      });
      expect(r.status).toBe(200);
      expect(r.ms).toBeGreaterThanOrEqual(0);
      const text = await failureOf(
        site.checkSiteHealth({
          proxyHost: 'host1',
          domain: DOMAIN,
          path: '/',
          expectStatus: 200,
          expectText: 'nope',
        }),
        FailureType.Unhealthy,
      );
      expect(text.nonRetryable).toBe(false);
      expect(text.message).toContain(`release ${RELEASE}`);
      const status = await failureOf(
        site.checkSiteHealth({ proxyHost: 'host1', domain: DOMAIN, path: '/missing', expectStatus: 200 }),
        FailureType.Unhealthy,
      );
      expect(status.message).toMatch(/answered 404, not 200/);
    });

    test('stop (twice), then start: down, then healthy and serving again', async () => {
      const stopped = await site.stopSiteContainers({ siteId: SITE, host: 'host2' });
      expect(stopped.containers.map((c) => c.result)).toEqual(['stopped', 'stopped']);
      expect(canFetch('host2', '/')).toBe(false);
      expect(
        (await site.stopSiteContainers({ siteId: SITE, host: 'host2' })).containers.map((c) => c.result),
      ).toEqual(['already-stopped', 'already-stopped']);
      // placement of a suspended site stays put (ports of stopped containers count)
      expect(await site.placeSite({ siteId: SITE, appServers: 2 })).toEqual(placement);
      const started = await site.startSiteContainers({ siteId: SITE, host: 'host2' });
      expect(started.containers).toEqual([
        { name: NAMES.container('cache'), result: 'started' },
        { name: NAMES.container('app'), result: 'started' },
      ]);
      expect(fetchOn('host2', '/')).toMatch(new RegExp(`^site ${SITE} release ${RELEASE}`));
    });

    test('a new release replaces the container', async () => {
      const r = await ensure('host3', 'app', 'r2');
      expect(r.action).toBe('replaced');
      expect(fetchOn('host3', '/')).toMatch(new RegExp(`^site ${SITE} release r2 on `));
    });

    test('removeSiteContainers (twice): no container with the label, no site network', async () => {
      for (const host of placement.appHosts) {
        const r = await site.removeSiteContainers({ siteId: SITE, host });
        expect(r.network).toBe('removed');
        expect(siteContainersOn(host)).toEqual([]);
        expect(docker(host, 'network', 'ls', '-q', '--filter', `name=^${NAMES.network}$`).trim()).toBe('');
        expect(await site.removeSiteContainers({ siteId: SITE, host })).toEqual({
          removed: [],
          network: 'absent',
        });
      }
      await proxy.removeSiteRoute({ host: 'host1', siteId: SITE });
    });

    test('with nothing mounted, an app container is refused (Conflict), never given a host-local directory', async () => {
      await storage.unmountSiteFiles({ siteId: SITE, host: 'host3' });
      await failureOf(ensure('host3', 'app'), FailureType.Conflict);
      expect(siteContainersOn('host3')).toEqual([]);
    });
  });

  describe('teardown', () => {
    test('unmountSiteFiles (twice) leaves no mount, no sshfs, no directory', async () => {
      for (const host of placement.appHosts) {
        const first = await storage.unmountSiteFiles({ siteId: SITE, host });
        expect(first.dirRemoved).toBe(true);
        expect(await storage.unmountSiteFiles({ siteId: SITE, host })).toEqual({
          mountPoint: PATHS.mount,
          result: 'absent',
          dirRemoved: true,
        });
        expect(ok(host, 'test -e "$1"', PATHS.siteDir)).toBe(false);
        expect(ok(host, 'grep -qF -- "$1" /proc/self/mountinfo', PATHS.mount)).toBe(false);
        expect(sshfsPids(host)).toEqual([]);
      }
    });

    test('removeSiteFiles with an archive: archived (then kept on a retry), files gone', async () => {
      const first = await storage.removeSiteFiles({
        siteId: SITE,
        storageHost: 'host1',
        archiveName: 'final',
      });
      expect(first).toMatchObject({
        files: 'removed',
        archive: { path: archivePath(SITE, 'final'), action: 'created' },
      });
      const listing = sh('host1', 'tar -tzf "$1"', archivePath(SITE, 'final'));
      expect(listing).toContain(`${SITE}/hello.txt`);
      expect(listing).toContain(`${SITE}/c.txt`);
      expect(ok('host1', 'test -e "$1"', PATHS.files)).toBe(false);
      const again = await storage.removeSiteFiles({
        siteId: SITE,
        storageHost: 'host1',
        archiveName: 'final',
      });
      expect(again).toEqual({ ...first, files: 'absent', archive: { ...first.archive, action: 'existing' } });
    });

    test('dropSiteDatabase (twice): user, database and kept password gone', async () => {
      const first = await site.dropSiteDatabase({ siteId: SITE, dbHost: placement.dbHost });
      expect(first).toMatchObject({ droppedDatabase: true, secrets: 'removed' });
      expect(first.droppedAccounts.sort()).toEqual(
        placement.appHosts.map((h) => bed.fleet.pool.host(h).address).sort(),
      );
      const users = testbed.exec(placement.dbHost, [
        'mariadb',
        '--batch',
        '--skip-column-names',
        '-e',
        `SELECT COUNT(*) FROM mysql.user WHERE User = '${NAMES.dbUser}'`,
      ]);
      expect(users.trim()).toBe('0');
      expect(ok(placement.dbHost, 'test -e "$1"', secretPaths(SITE).dir)).toBe(false);
      expect(await site.dropSiteDatabase({ siteId: SITE, dbHost: placement.dbHost })).toMatchObject({
        droppedAccounts: [],
        droppedDatabase: false,
        secrets: 'absent',
      });
    });
  });
});
