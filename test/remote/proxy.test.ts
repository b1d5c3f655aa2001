import http from 'node:http';
import type Docker from 'dockerode';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { makeProxyActivities, type ProxyActivities } from '../../activities/proxy/activities';
import { RELOAD_OWED, statusArgv } from '../../activities/proxy/commands';
import { listenAddress, renderRouteJson, renderSiteConfig } from '../../activities/proxy/nginxConfig';
import { proxyPaths, sitePaths } from '../../activities/proxy/layout';
import type { Route } from '../../schema/route';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { withWorker } from '../support/temporal';
import { runActivity } from '../workflows/runActivity';

/**
 * The proxy activities against a real nginx on host1 of the test bed, routing to two real
 * busybox httpd containers (host2 and host3) that each answer with their host's name.
 */

const PROXY = 'host1';
const WEB = 'qm-test-proxy-web';
const WEB_PORT = 8081;
const SITE_A = 'qmtest-proxy-a';
const SITE_B = 'qmtest-proxy-b';
const DOMAIN_A = 'a.proxytest.example';
const DOMAIN_B = 'b.proxytest.example';

let bed: Bed;
let acts: ProxyActivities;
let proxyAddress: string;

const backend = (host: string, state: 'active' | 'drained' = 'active') => ({
  host,
  address: bed.fleet.pool.host(host).address,
  port: WEB_PORT,
  state,
});
const routeA = (over: Partial<Route> = {}): Route => ({
  siteId: SITE_A,
  domains: [DOMAIN_A, `www.${DOMAIN_A}`],
  backends: [backend('host2'), backend('host3')],
  mode: 'active',
  ...over,
});

/** One GET on a fresh connection, as a new visitor would make it (no retry on a reused socket). */
function get(
  address: string,
  port: number,
  hostHeader: string,
  path = '/',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: address, port, path, agent: false, headers: { Host: hostHeader }, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function bodiesThroughProxy(domain: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await get(proxyAddress, 80, domain);
    expect(r.status).toBe(200);
    out.push(r.body.trim());
  }
  return out;
}

/** Requests through the proxy back to back until stopped: how many, and which failed. */
function startPoller(domain: string) {
  let running = true;
  const seen: string[] = [];
  const failures: string[] = [];
  const done = (async () => {
    while (running) {
      try {
        const r = await get(proxyAddress, 80, domain);
        if (r.status === 200) seen.push(r.body.trim());
        else failures.push(`HTTP ${r.status}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  })();
  return {
    seen,
    failures,
    async stop() {
      running = false;
      await done;
    },
  };
}

async function onProxy(argv: string[]): Promise<string> {
  return (await bed.fleet.pool.exec(PROXY, argv)).stdout;
}

/** Master and worker pids of the proxy's nginx: a reload replaces the workers. */
async function nginxPids(): Promise<string> {
  return (await onProxy(statusArgv())).trim();
}

async function fileState(path: string): Promise<string> {
  return (await onProxy(['stat', '-c', '%y %s', path])).trim();
}

async function removeWeb(docker: Docker) {
  try {
    await docker.getContainer(WEB).remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

async function startWeb(host: string) {
  const docker = bed.fleet.docker.engine(host);
  await removeWeb(docker);
  const c = await docker.createContainer({
    name: WEB,
    Image: 'local/busybox:1',
    // /cgi-bin/slow?N answers after N seconds (a request that is in flight for a while)
    Cmd: [
      'sh',
      '-c',
      `echo "$1" > /www/index.html && mkdir -p /www/cgi-bin && cat > /www/cgi-bin/slow <<'EOF'
#!/bin/sh
case "$QUERY_STRING" in '' | *[!0-9]*) s=1 ;; *) s=$QUERY_STRING ;; esac
sleep "$s"
printf 'Content-Type: text/plain\r\n\r\nslow\n'
EOF
chmod +x /www/cgi-bin/slow && exec httpd -f -p 80 -h /www`,
      'sh',
      host,
    ],
    Labels: { 'qm.test': '1' },
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { Init: true, PortBindings: { '80/tcp': [{ HostPort: String(WEB_PORT) }] } },
  });
  await c.start();
  await waitForWeb(host);
}

async function waitForWeb(host: string) {
  const address = bed.fleet.pool.host(host).address;
  await eventually(
    async () => {
      const r = await get(address, WEB_PORT, 'x'); // fails while it does not listen yet
      return r.status === 200 && r.body.trim() === host;
    },
    {
      what: `${host}: the test web container to answer`,
      timeoutMs: 20_000,
      intervalMs: 100,
      retryErrors: true,
    },
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
  acts = makeProxyActivities(bed.fleet);
  proxyAddress = bed.fleet.pool.host(PROXY).address;
  // a clean proxy host: no nginx of ours, no files left by an earlier run
  await acts.stopProxy({ host: PROXY, graceSeconds: 5 });
  await onProxy(['rm', '-rf', proxyPaths.dir]);
  await Promise.all([startWeb('host2'), startWeb('host3')]);
}, 60_000);

afterAll(async () => {
  if (acts) {
    await acts.removeSiteRoute({ host: PROXY, siteId: SITE_A }).catch(() => undefined);
    await acts.removeSiteRoute({ host: PROXY, siteId: SITE_B }).catch(() => undefined);
    await acts.stopProxy({ host: PROXY, graceSeconds: 5 }).catch(() => undefined);
    await onProxy(['rm', '-rf', proxyPaths.dir]).catch(() => undefined);
  }
  if (bed)
    await Promise.all(
      ['host2', 'host3'].map((h) => removeWeb(bed.fleet.docker.engine(h)).catch(() => undefined)),
    );
  await bed?.close();
}, 60_000);

test('before ensureProxy: a put is refused (Conflict), reads and removes find nothing', async () => {
  const err = await expectFailure(acts.putSiteRoute({ host: PROXY, route: routeA() }), 'Conflict');
  expect(err.message).toContain('run ensureProxy');
  expect(await acts.readSiteRoute({ host: PROXY, siteId: SITE_A })).toBeNull();
  expect(await acts.removeSiteRoute({ host: PROXY, siteId: SITE_A })).toEqual({
    changed: false,
    reloaded: false,
  });
  expect(await onProxy(['sh', '-c', 'test -e "$1" && echo yes || echo no', 'qm', proxyPaths.dir])).toBe(
    'no\n',
  );
});

test('ensureProxy starts nginx once; a second run changes nothing; unknown hosts get 404', async () => {
  const first = await acts.ensureProxy({ host: PROXY });
  expect(first).toMatchObject({ changed: true, started: true });
  const pids = await nginxPids();
  const confState = await fileState(proxyPaths.conf);

  const second = await acts.ensureProxy({ host: PROXY });
  expect(second).toEqual({ changed: false, reloaded: false, started: false, masterPid: first.masterPid });
  expect(await nginxPids()).toBe(pids);
  expect(await fileState(proxyPaths.conf)).toBe(confState);

  expect((await get(proxyAddress, 80, 'nobody.proxytest.example')).status).toBe(404);
  // nothing of the machine's own nginx is used
  expect(
    await onProxy(['sh', '-c', 'tr "\\0" " " < /proc/$(cat "$1")/cmdline', 'qm', proxyPaths.pid]),
  ).toContain(`-c ${proxyPaths.conf}`);
});

test('ensureProxy restarts a stopped proxy', async () => {
  expect(await acts.stopProxy({ host: PROXY, graceSeconds: 5 })).toEqual({ stopped: true });
  expect(await nginxPids()).toBe('');
  expect(await acts.stopProxy({ host: PROXY, graceSeconds: 5 })).toEqual({ stopped: false });
  const again = await acts.ensureProxy({ host: PROXY });
  expect(again).toMatchObject({ changed: false, started: true });
  expect((await get(proxyAddress, 80, 'nobody.proxytest.example')).status).toBe(404);
});

test('a routed site is served by both backends; the same put again changes nothing', async () => {
  expect(await acts.putSiteRoute({ host: PROXY, route: routeA() })).toEqual({
    changed: true,
    reloaded: true,
  });
  const bodies = await bodiesThroughProxy(DOMAIN_A, 12);
  expect(new Set(bodies)).toEqual(new Set(['host2', 'host3']));
  expect(new Set(await bodiesThroughProxy(`www.${DOMAIN_A}`, 6))).toEqual(new Set(['host2', 'host3']));
  expect(await acts.readSiteRoute({ host: PROXY, siteId: SITE_A })).toEqual(routeA());

  const pids = await nginxPids();
  const conf = await fileState(sitePaths(SITE_A).conf);
  const json = await fileState(sitePaths(SITE_A).json);
  expect(await acts.putSiteRoute({ host: PROXY, route: routeA() })).toEqual({
    changed: false,
    reloaded: false,
  });
  expect(await nginxPids()).toBe(pids); // same master, same workers: not reloaded
  expect(await fileState(sitePaths(SITE_A).conf)).toBe(conf);
  expect(await fileState(sitePaths(SITE_A).json)).toBe(json);
});

test('one backend failing is invisible to users while the other is healthy', async () => {
  await bed.fleet.docker.engine('host2').getContainer(WEB).stop({ t: 1 });
  try {
    const bodies = await bodiesThroughProxy(DOMAIN_A, 12); // each asserts 200
    expect(new Set(bodies)).toEqual(new Set(['host3']));
  } finally {
    await bed.fleet.docker.engine('host2').getContainer(WEB).start();
    await waitForWeb('host2');
  }
});

test('draining host2 sends every new request to host3 with zero failed requests; readmitting brings it back', async () => {
  const poller = startPoller(DOMAIN_A);
  await new Promise((r) => setTimeout(r, 300));
  const drained = await acts.setBackendState({
    host: PROXY,
    siteId: SITE_A,
    backendHost: 'host2',
    state: 'drained',
  });
  await new Promise((r) => setTimeout(r, 300));
  await poller.stop();
  expect(drained.changed).toBe(true);
  expect(poller.failures).toEqual([]);
  expect(poller.seen.length).toBeGreaterThan(10);
  expect(new Set(await bodiesThroughProxy(DOMAIN_A, 10))).toEqual(new Set(['host3']));
  expect((await acts.readSiteRoute({ host: PROXY, siteId: SITE_A }))?.backends).toEqual([
    backend('host2', 'drained'),
    backend('host3'),
  ]);

  // draining again is a no-op
  const pids = await nginxPids();
  expect(
    await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host2', state: 'drained' }),
  ).toMatchObject({
    changed: false,
  });
  expect(await nginxPids()).toBe(pids);

  // a readmit returns once the new workers run; the old ones (routing to host3 only, as before)
  // are told to stop taking requests about 100 ms later
  await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host2', state: 'active' });
  const seen = await eventually(
    async () => {
      const bodies = new Set(await bodiesThroughProxy(DOMAIN_A, 12));
      return bodies.size >= 2 && bodies;
    },
    { what: 'answers from both backends', timeoutMs: 5000, intervalMs: 0 },
  );
  expect(seen).toEqual(new Set(['host2', 'host3']));
});

test("a caller's copy of the route saves the read when it is current; a stale one is caught by the guard and the stored route re-read", async () => {
  const found = (await acts.readSiteRoute({ host: PROXY, siteId: SITE_A }))!;
  expect(found.backends).toEqual([backend('host2'), backend('host3')]);
  const drained = await acts.setBackendState({
    host: PROXY,
    siteId: SITE_A,
    backendHost: 'host2',
    state: 'drained',
    expected: found,
  });
  expect(drained).toMatchObject({
    changed: true,
    route: { backends: [backend('host2', 'drained'), backend('host3')] },
  });

  // someone else drains host3; a readmit of host2 with the copy from before that must keep it
  await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host3', state: 'drained' });
  await acts.setBackendState({
    host: PROXY,
    siteId: SITE_A,
    backendHost: 'host2',
    state: 'active',
    expected: drained.route,
  });
  expect((await acts.readSiteRoute({ host: PROXY, siteId: SITE_A }))?.backends).toEqual([
    backend('host2'),
    backend('host3', 'drained'),
  ]);
  await acts.putSiteRoute({ host: PROXY, route: routeA() });
  expect(new Set(await bodiesThroughProxy(DOMAIN_A, 12))).toContain('host3');
});

/**
 * A request that takes 2 s, sent while only host2 serves (so it goes there); host3 is readmitted
 * once it is in flight. When it was sent, and its answer.
 */
async function slowRequestOnHost2() {
  await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host3', state: 'drained' });
  const sentAt = Date.now();
  const answer = get(proxyAddress, 80, DOMAIN_A, '/cgi-bin/slow?2');
  await new Promise((r) => setTimeout(r, 300));
  await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host3', state: 'active' });
  return { sentAt, answer };
}

test('a request in flight when its backend is drained: waitForInFlight returns once it has finished; with no time left it counts the workers still holding it', async () => {
  const { sentAt: t0, answer: slow } = await slowRequestOnHost2();
  await acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host2', state: 'drained' });

  expect((await acts.waitForInFlight({ host: PROXY, timeoutSeconds: 0 })).lingering).toBeGreaterThan(0);
  const waited = await acts.waitForInFlight({ host: PROXY, timeoutSeconds: 30 });
  const returnedAt = Date.now();
  expect(waited.lingering).toBe(0);
  // the request sleeps 2 s on host2, and the worker holding it exits only once it has answered
  expect(returnedAt - t0).toBeGreaterThanOrEqual(2000);
  expect(await slow).toEqual({ status: 200, body: 'slow\n' });
  // nothing in flight: it returns at once
  expect(await acts.waitForInFlight({ host: PROXY, timeoutSeconds: 30 })).toMatchObject({ lingering: 0 });

  await acts.putSiteRoute({ host: PROXY, route: routeA() });
});

test('a drain that waits for the requests in flight itself (waitInFlightSeconds): it returns once the slow request has answered, or with 0 s says how many workers still hold one', async () => {
  const { sentAt: t0, answer: slow } = await slowRequestOnHost2();
  // no time to wait: the drain is done, and the worker holding the slow request is counted
  const quick = await acts.setBackendState({
    host: PROXY,
    siteId: SITE_A,
    backendHost: 'host2',
    state: 'drained',
    waitInFlightSeconds: 0,
  });
  expect(quick).toMatchObject({ changed: true, reloaded: true });
  expect(quick.lingering).toBeGreaterThan(0);
  // the same drain again (a retry): nothing to change, and this time it waits for the request
  const waited = await acts.setBackendState({
    host: PROXY,
    siteId: SITE_A,
    backendHost: 'host2',
    state: 'drained',
    waitInFlightSeconds: 30,
  });
  expect(waited).toMatchObject({ changed: false, lingering: 0 });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
  expect(await slow).toEqual({ status: 200, body: 'slow\n' });

  // the maintenance page with a wait: applied, then nothing in flight
  const page = await acts.putSiteRoute({
    host: PROXY,
    route: { ...routeA(), mode: 'maintenance' },
    waitInFlightSeconds: 30,
  });
  expect(page).toMatchObject({ changed: true, reloaded: true, lingering: 0 });
  await acts.putSiteRoute({ host: PROXY, route: routeA() });
});

test('two concurrent backend changes of one route are both kept (no lost update)', async () => {
  await Promise.all([
    acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host2', state: 'drained' }),
    acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host3', state: 'drained' }),
  ]);
  expect((await acts.readSiteRoute({ host: PROXY, siteId: SITE_A }))?.backends.map((b) => b.state)).toEqual([
    'drained',
    'drained',
  ]);
  // every backend drained: the maintenance page, never a 502
  const probe = await acts.probeSite({ proxyHost: PROXY, domain: DOMAIN_A, path: '/' });
  expect(probe).toMatchObject({ status: 503, retryAfter: '300', siteState: 'no-active-backend' });
  expect(probe.bodyExcerpt).toContain('Down for maintenance');

  await acts.putSiteRoute({ host: PROXY, route: routeA() });
  expect((await acts.probeSite({ proxyHost: PROXY, domain: DOMAIN_A, path: '/' })).status).toBe(200);
});

test('a suspended site serves the suspended page with 503 and Retry-After', async () => {
  await acts.putSiteRoute({ host: PROXY, route: routeA({ mode: 'suspended' }) });
  const probe = await acts.probeSite({ proxyHost: PROXY, domain: DOMAIN_A, path: '/some/page?x=1' });
  expect(probe).toMatchObject({ status: 503, retryAfter: '3600', siteState: 'suspended' });
  expect(probe.bodyExcerpt).toContain('Site suspended');
  expect(probe.bodyExcerpt).not.toMatch(/host[23]/);
});

test('maintenance mode serves the maintenance page with 503 and Retry-After', async () => {
  await acts.putSiteRoute({ host: PROXY, route: routeA({ mode: 'maintenance' }) });
  const probe = await acts.probeSite({ proxyHost: PROXY, domain: `www.${DOMAIN_A}`, path: '/' });
  expect(probe).toMatchObject({ status: 503, retryAfter: '300', siteState: 'maintenance' });
  expect(probe.bodyExcerpt).toContain('Down for maintenance');

  await acts.putSiteRoute({ host: PROXY, route: routeA() });
  expect((await acts.probeSite({ proxyHost: PROXY, domain: DOMAIN_A, path: '/' })).status).toBe(200);
});

test('a config nginx rejects is never loaded: the previous files are put back and keep serving', async () => {
  const paths = sitePaths(SITE_A);
  const before = { conf: await onProxy(['cat', paths.conf]), json: await onProxy(['cat', paths.json]) };
  const pids = await nginxPids();
  // someone hand-edited the proxy into a state nginx -t refuses
  const broken = `${proxyPaths.sites}/zz-hand-edit.conf`;
  await bed.fleet.pool.exec(PROXY, ['sh', '-c', 'cat > "$1"', 'qm', broken], {
    stdin: 'server { listen 80; bogus_directive on; }\n',
  });
  try {
    const err = await expectFailure(
      acts.putSiteRoute({ host: PROXY, route: routeA({ backends: [backend('host3')] }) }),
      'CommandFailed',
    );
    expect(err.message).toMatch(/nginx rejected the new configuration.*bogus_directive/);
    expect(await onProxy(['cat', paths.conf])).toBe(before.conf);
    expect(await onProxy(['cat', paths.json])).toBe(before.json);
    expect(await nginxPids()).toBe(pids);
    expect(new Set(await bodiesThroughProxy(DOMAIN_A, 12))).toEqual(new Set(['host2', 'host3']));
  } finally {
    await onProxy(['rm', '-f', broken]);
  }
  // no candidate, backup or marker is left behind
  expect((await onProxy(['ls', '-A', proxyPaths.sites])).trim().split('\n').sort()).toEqual([
    `${SITE_A}.conf`,
    `${SITE_A}.json`,
  ]);
});

test('a change cut short (connection lost mid-transaction) is undone or finished by the next one', async () => {
  const paths = sitePaths(SITE_A);
  const good = await onProxy(['cat', paths.conf]);
  const write = (path: string, content: string) =>
    bed.fleet.pool.exec(PROXY, ['sh', '-c', 'cat > "$1"', 'qm', path], { stdin: content });

  // cut short after the untested candidate was moved into place: the backup is put back
  await onProxy(['cp', '-p', paths.conf, `${paths.conf}.qm-prev`]);
  await write(paths.conf, 'this is not nginx config {\n');
  expect(await acts.putSiteRoute({ host: PROXY, route: routeA() })).toEqual({
    changed: false,
    reloaded: false,
  });
  expect(await onProxy(['cat', paths.conf])).toBe(good);

  // cut short after the commit, before the reload: the next call with the same route reloads
  const drained = routeA({ backends: [backend('host2', 'drained'), backend('host3')] });
  await write(paths.conf, renderSiteConfig(drained, { listen: listenAddress(proxyAddress) }));
  await write(paths.json, renderRouteJson(drained));
  await onProxy(['touch', RELOAD_OWED]);
  expect(new Set(await bodiesThroughProxy(DOMAIN_A, 8))).toEqual(new Set(['host2', 'host3'])); // not loaded yet
  expect(await acts.putSiteRoute({ host: PROXY, route: drained })).toEqual({
    changed: false,
    reloaded: true,
  });
  expect(new Set(await bodiesThroughProxy(DOMAIN_A, 8))).toEqual(new Set(['host3']));

  await acts.putSiteRoute({ host: PROXY, route: routeA() });
  expect((await onProxy(['ls', '-A', proxyPaths.dir])).split('\n')).not.toContain('.qm-reload-owed');
  expect((await onProxy(['ls', '-A', proxyPaths.sites])).trim().split('\n').sort()).toEqual([
    `${SITE_A}.conf`,
    `${SITE_A}.json`,
  ]);
});

test('a domain already routed to another site is refused, and nothing changes', async () => {
  const pids = await nginxPids();
  const err = await expectFailure(
    acts.putSiteRoute({
      host: PROXY,
      route: { siteId: SITE_B, domains: [DOMAIN_B, DOMAIN_A], backends: [backend('host3')], mode: 'active' },
    }),
    'Conflict',
  );
  expect(err.nonRetryable).toBe(true);
  expect(err.message).toContain(DOMAIN_A);
  expect(await acts.readSiteRoute({ host: PROXY, siteId: SITE_B })).toBeNull();
  expect(await nginxPids()).toBe(pids);
});

test('removing a route makes its domains 404 and leaves other sites alone; removing again is a no-op', async () => {
  await acts.putSiteRoute({
    host: PROXY,
    route: { siteId: SITE_B, domains: [DOMAIN_B], backends: [backend('host3')], mode: 'active' },
  });
  expect(await bodiesThroughProxy(DOMAIN_B, 2)).toEqual(['host3', 'host3']);

  expect(await acts.removeSiteRoute({ host: PROXY, siteId: SITE_A })).toEqual({
    changed: true,
    reloaded: true,
  });
  expect((await get(proxyAddress, 80, DOMAIN_A)).status).toBe(404);
  expect((await get(proxyAddress, 80, `www.${DOMAIN_A}`)).status).toBe(404);
  expect(await bodiesThroughProxy(DOMAIN_B, 2)).toEqual(['host3', 'host3']);
  expect(await acts.readSiteRoute({ host: PROXY, siteId: SITE_A })).toBeNull();

  const pids = await nginxPids();
  expect(await acts.removeSiteRoute({ host: PROXY, siteId: SITE_A })).toEqual({
    changed: false,
    reloaded: false,
  });
  expect(await nginxPids()).toBe(pids);
  await expectFailure(
    acts.setBackendState({ host: PROXY, siteId: SITE_A, backendHost: 'host2', state: 'drained' }),
    'Conflict',
  );
});

test('a hostile domain is rejected by the schema (InvalidInput, not retried) before anything is written', async () => {
  const listing = await onProxy(['ls', '-lA', '--time-style=full-iso', proxyPaths.sites]);
  const pids = await nginxPids();
  const hostile = routeA({
    siteId: 'qmtest-proxy-evil',
    domains: ['evil.example;}server{listen 80;return 200 pwned;}#'],
  });

  const err = await withWorker(bed, (taskQueue) =>
    bed.env.client.workflow
      .execute(runActivity, {
        taskQueue,
        workflowId: `proxy-hostile-${Date.now()}`,
        args: [
          {
            activity: 'putSiteRoute',
            args: [{ host: PROXY, route: hostile }],
            options: { retry: { maximumAttempts: 3 } },
          },
        ],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      ),
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause?.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).type).toBe('InvalidInput');
  expect((cause as ApplicationFailure).message).toMatch(/route\.domains\.0/);

  // not a proxy host; an unknown host
  await expectFailure(acts.putSiteRoute({ host: 'host2', route: routeA() }), 'InvalidInput');
  await expectFailure(acts.ensureProxy({ host: 'host9' }), 'InvalidInput');
  await expectFailure(
    acts.probeSite({ proxyHost: PROXY, domain: 'a.example\r\nX: y', path: '/' }),
    'InvalidInput',
  );

  expect(await onProxy(['ls', '-lA', '--time-style=full-iso', proxyPaths.sites])).toBe(listing);
  expect(await nginxPids()).toBe(pids);
});
