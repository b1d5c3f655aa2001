import {
  archiveArgv,
  ensureRepoArgv,
  removeRepoArgv,
  linkHookArgv,
  resolveRefArgv,
  writeFileArgv,
} from '../../activities/git/commands';
import { parseReleaseList, releasesToPrune, unpackReleaseArgv } from '../../activities/release/commands';
import { renderSiteContainer } from '../../activities/site/render';
import type { Client } from '@temporalio/client';
import { PushNotification } from '../../api/gitHook';
import { buildApi } from '../../api/server';
import { sign } from '../../api/signature';
import { Profile } from '../../schema/profile';
import { CommitId, GitRef } from '../../schema/release';
import { SiteSpec } from '../../schema/site';
import { DeployReleaseInput } from '../../protocol/operations';

/** The pure parts of deploys: names, argument vectors, pruning, the standby slot, inputs. */

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const C3 = 'c'.repeat(40);
const C4 = 'd'.repeat(40);

test('commit ids are 40 lowercase hex digits; refs can never be options or climb out', () => {
  expect(CommitId.safeParse(C1).success).toBe(true);
  for (const bad of ['A'.repeat(40), 'a'.repeat(39), `${'a'.repeat(40)}\n`, '--upload-pack=x'])
    expect(CommitId.safeParse(bad).success).toBe(false);
  for (const ok of ['main', 'feature/x', 'v1.2', 'refs/heads/main', 'abc1234'])
    expect(GitRef.safeParse(ok).success).toBe(true);
  for (const bad of ['-x', '--output=/etc/passwd', 'a..b', 'x y', 'a;b', 'main/', 'x.lock', ''])
    expect(GitRef.safeParse(bad).success).toBe(false);
});

test('git commands are argument vectors: the repo and ref are arguments, never shell text', () => {
  expect(ensureRepoArgv('customers/acme.git').slice(3)).toEqual([
    'qm-ensure-repo',
    '/srv/git/customers/acme.git',
    '',
  ]);
  expect(ensureRepoArgv('customers/acme.git', 'acme').slice(3)).toEqual([
    'qm-ensure-repo',
    '/srv/git/customers/acme.git',
    'acme',
  ]);
  expect(removeRepoArgv('customers/acme.git', 'acme').slice(3)).toEqual([
    'qm-remove-repo',
    '/srv/git/customers/acme.git',
    'acme',
  ]);
  expect(resolveRefArgv('customers/acme.git', 'main')).toEqual([
    'git',
    '-C',
    '/srv/git/customers/acme.git',
    'rev-parse',
    '--verify',
    '--quiet',
    '--end-of-options',
    'main^{commit}',
  ]);
  expect(archiveArgv('customers/acme.git', C1)).toEqual([
    'git',
    '-C',
    '/srv/git/customers/acme.git',
    'archive',
    '--format=tar',
    C1,
  ]);
  expect(linkHookArgv('customers/acme.git')[4]).toBe('/srv/git/customers/acme.git');
  expect(writeFileArgv('/srv/qm/git/hook.secret', '0600').slice(-2)).toEqual([
    '/srv/qm/git/hook.secret',
    '0600',
  ]);
  expect(() => ensureRepoArgv('../etc.git')).toThrow();
  expect(unpackReleaseArgv('acme', C1).slice(-2)).toEqual(['/srv/qm/releases/acme', C1]);
});

test('pruning keeps the N most recently live releases, and never the live or protected ones', () => {
  const kept = [
    { commit: C1, liveAt: 100 },
    { commit: C2, liveAt: 200 },
    { commit: C3, liveAt: 300 },
    { commit: C4, liveAt: 400 },
  ];
  expect(releasesToPrune(kept, 3, [C4])).toEqual([C1]);
  expect(releasesToPrune(kept, 2, [C4, C1])).toEqual([C2]);
  expect(releasesToPrune(kept, 10, [])).toEqual([]);
  expect(parseReleaseList(`100 ${C1}\n200 ${C2}\ngarbage\n300 .tmp-x\n`)).toEqual([
    { commit: C1, liveAt: 100 },
    { commit: C2, liveAt: 200 },
  ]);
});

const profile = Profile.parse({
  name: 'pp',
  containers: {
    app: { image: 'local/busybox:1', port: 80, filesMount: '/files' },
    cache: { image: 'local/busybox:1', port: 11211 },
    cron: { image: 'local/busybox:1', filesMount: '/files' },
  },
});
const site = SiteSpec.parse({
  siteId: 'acme',
  customerId: 'c1',
  plan: 'starter',
  profile: 'pp',
  domains: ['acme.example'],
  git: { repo: 'customers/acme.git' },
});
const placement = {
  appHosts: ['host2', 'host3'],
  dbHost: 'host1',
  storageHost: 'host1',
  proxyHosts: ['host1'],
  cacheHost: 'host2',
  port: 20001,
};
const values = { dbHostAddress: '10.0.0.1', cacheHostAddress: '10.0.0.2' };

test('the standby slot: its own name, port (+20000) and label; a commit release mounts its code read-only', () => {
  const live = renderSiteContainer({ profile, role: 'app', site, placement, release: C1, values });
  const standby = renderSiteContainer({
    profile,
    role: 'app',
    site,
    placement,
    release: C1,
    values,
    slot: 'standby',
  });
  expect(live.name).toBe('site-acme-app');
  expect(standby.name).toBe('site-acme-app-standby');
  expect(live.ports.map((p) => p.hostPort)).toEqual([20001]);
  expect(standby.ports.map((p) => p.hostPort)).toEqual([40001]);
  expect(standby.labels['qm.slot']).toBe('standby');
  expect(live.labels['qm.slot']).toBeUndefined();
  for (const spec of [
    live,
    standby,
    renderSiteContainer({ profile, role: 'cron', site, placement, release: C1, values }),
  ])
    expect(spec.mounts).toContainEqual({
      type: 'bind',
      source: `/srv/qm/releases/acme/${C1}`,
      target: '/srv/release',
      readOnly: true,
    });
  const cache = renderSiteContainer({ profile, role: 'cache', site, placement, release: C1, values });
  expect(cache.mounts).toEqual([]);
  // what provisionSite made (release 'initial', no slot) renders exactly as before: no code mount
  const initial = renderSiteContainer({ profile, role: 'app', site, placement, release: 'initial', values });
  expect(initial.mounts).toEqual([
    { type: 'bind', source: '/srv/qm/sites/acme/files', target: '/files', readOnly: false },
  ]);
});

test('deploy input: exactly one of commit and ref; a push names its commit', () => {
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', commit: C1 }).success).toBe(true);
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', ref: 'main' }).success).toBe(true);
  expect(DeployReleaseInput.safeParse({ siteId: 'acme' }).success).toBe(false);
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', commit: C1, ref: 'main' }).success).toBe(false);
  const push = { repo: 'customers/acme.git', branch: 'main', before: C2, pusher: 'alice' };
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', ref: 'main', push }).success).toBe(false);
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', commit: C1, push }).success).toBe(true);
  expect(DeployReleaseInput.safeParse({ siteId: 'acme', commit: C1, surprise: 1 }).success).toBe(false);
});

test('a push notification: a branch of a platform repository, full commit ids', () => {
  const ok = { repo: 'customers/acme.git', ref: 'refs/heads/main', before: C1, after: C2, pusher: 'alice' };
  expect(PushNotification.safeParse(ok).success).toBe(true);
  expect(PushNotification.safeParse({ ...ok, ref: 'refs/tags/v1' }).success).toBe(false);
  expect(PushNotification.safeParse({ ...ok, repo: '../x.git' }).success).toBe(false);
  expect(PushNotification.safeParse({ ...ok, after: 'abc' }).success).toBe(false);
  expect(PushNotification.safeParse({ ...ok, pusher: 'a b' }).success).toBe(false);
});

test('the API serves the Git webhook with its own secret: neither secret opens the other door', async () => {
  const hookSecret = 'g'.repeat(40);
  const apiSecret = 's'.repeat(40);
  const app = buildApi({
    client: {} as Client,
    taskQueue: 'q',
    secrets: [apiSecret],
    gitHookSecrets: [hookSecret],
  });
  const body = JSON.stringify({
    repo: 'customers/a.git',
    ref: 'refs/heads/main',
    before: C1,
    after: 'zz',
    pusher: 'a',
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const post = async (url: string, secret: string, payload: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${url}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...sign(secret, { method: 'POST', path: url, body: payload }),
      },
      body: payload,
    });
    return { statusCode: r.status, body: await r.text() };
  };
  try {
    const bad = await post('/hooks/git', hookSecret, body); // signed right, then validated
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('after: commit must be 40 lowercase hex digits');
    expect((await post('/hooks/git', apiSecret, body)).statusCode).toBe(401);
    expect((await post('/v1/sites/abc/suspend', hookSecret, '{}')).statusCode).toBe(401);
  } finally {
    await app.close();
  }
});
