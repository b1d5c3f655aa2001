import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, main, parseCommand, whoAmI } from '../../cli/qm';

/**
 * `qm` checks every argument against the workflows' own schemas before it connects: a typo never
 * reaches Temporal (TEMPORAL_ADDRESS points at a closed port, so a command that got as far as
 * connecting would end with EXIT.unavailable instead).
 */

async function qm(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const saved = process.env.TEMPORAL_ADDRESS;
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  try {
    const code = await main(argv, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      readStdin: () => '',
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    if (saved === undefined) delete process.env.TEMPORAL_ADDRESS;
    else process.env.TEMPORAL_ADDRESS = saved;
  }
}

test.each([
  [['plan', 'acme', 'gold'], /plan/],
  [['plan', 'acme'], /qm plan <siteId> <plan>/],
  [['deploy', 'acme'], /qm deploy <siteId> <ref\|commit>/],
  [['deploy', 'acme', 'main;rm -rf /'], /ref/],
  [['restore', 'acme', '../../etc'], /backupId/],
  [['rollback', 'acme', 'HEAD~1'], /release/],
  [['backup', 'acme', 'now'], /unexpected arguments: now/],
  [['suspend', 'acme', 'now'], /unexpected arguments: now/],
  [['deploy', 'acme', 'main', 'extra'], /unexpected arguments: extra/],
  [['backup', 'Acme!'], /bad site id/],
  [['frobnicate'], /unknown command frobnicate/],
])('qm %j → usage error naming what is wrong, nothing connects', async (argv, message) => {
  const r = await qm(...argv);
  expect(r.code).toBe(EXIT.usage);
  expect(r.err).toMatch(message);
});

test('a good command gets past the checks (and finds no Temporal on the closed port)', async () => {
  const r = await qm('deploy', 'acme', 'a'.repeat(40), '--reason', 'hotfix', '--no-follow');
  expect(r.code).toBe(EXIT.unavailable);
}, 60_000);

describe('parseCommand: what a command line starts, before anything connects', () => {
  const io = () => {
    const err: string[] = [];
    return { out: () => undefined, err: (l: string) => err.push(l), readStdin: () => '', lines: err };
  };
  const env = { QM_USER: 'jane' };
  const spec = {
    siteId: 'acme',
    customerId: 'cust-1042',
    plan: 'business',
    profile: 'test-busybox',
    domains: ['acme.example.org'],
    git: { repo: 'customers/acme.git' },
  };
  const file = (content: unknown) => {
    const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qm-spec-')), 'spec.json');
    fs.writeFileSync(p, JSON.stringify(content));
    return p;
  };

  test("qm provision takes the docs' {site, triggeredBy} input, and a bare SiteSpec, alike", () => {
    const wrapped = io();
    const a = parseCommand(['provision', file({ site: spec, triggeredBy: 'ops:jane' })], wrapped, env);
    const b = parseCommand(['provision', file(spec)], io(), env);
    expect(a).toEqual({
      command: 'start',
      kind: 'provision',
      siteId: 'acme',
      input: { site: spec, triggeredBy: 'qm:jane' },
      follow: true,
    });
    expect(b).toEqual(a);
    expect(wrapped.lines).toEqual(['qm: recording the operation as triggered by qm:jane, not "ops:jane"']);
  });

  test('a bad provision input names every bad field, wrapped or not', () => {
    expect(() =>
      parseCommand(['provision', file({ site: { ...spec, plan: 'gold' }, colour: 1 })], io(), env),
    ).toThrow(/site\.plan[\s\S]*colour|colour[\s\S]*site\.plan/);
    expect(() => parseCommand(['provision', file([spec])], io(), env)).toThrow(/JSON object/);
  });

  test.each([
    [['suspend', 'acme', '--reason', 'unpaid'], 'suspend', { reason: 'unpaid' }],
    [['resume', 'acme'], 'resume', {}],
    [['deprovision', 'acme'], 'deprovision', { skipFinalBackup: false }],
    [['plan', 'acme', 'business'], 'change-plan', { plan: 'business' }],
    [['backup', 'acme', '--no-prune'], 'backup', { kind: 'on-demand', prune: false }],
    [['restore', 'acme', '20260301T010000Z-k3x9q1'], 'restore', { backupId: '20260301T010000Z-k3x9q1' }],
    [['deploy', 'acme', 'main'], 'deploy', { ref: 'main' }],
    [['rollback', 'acme', 'initial'], 'rollback', { release: 'initial' }],
  ] as const)('qm %j starts %s as qm:<user>', (argv, kind, fields) => {
    expect(parseCommand([...argv], io(), env)).toMatchObject({
      command: 'start',
      kind,
      siteId: 'acme',
      input: { siteId: 'acme', triggeredBy: 'qm:jane', ...fields },
    });
  });

  test('who: QM_USER, else the sudo user, else the OS user; a bad QM_USER is refused', () => {
    expect(whoAmI({ QM_USER: 'jane', SUDO_USER: 'bob' })).toBe('qm:jane');
    expect(whoAmI({ SUDO_USER: 'bob' })).toBe('qm:bob');
    expect(whoAmI({})).toBe(`qm:${os.userInfo().username}`);
    expect(() => whoAmI({ QM_USER: 'jane doe' })).toThrow(/QM_USER/);
  });

  test.each([
    'provision:acme:ord-17',
    'patch-2026-12-06',
    'nightly-backups-2026-12-06T01:00:00Z',
    'backup:acme:nightly-2026-12-06',
    'check-fleet-1',
  ])('qm op takes any workflow id: %s', (id) => {
    expect(parseCommand(['op', id, '--follow'], io(), env)).toEqual({
      command: 'op',
      id,
      follow: true,
      json: false,
    });
  });

  test('qm op refuses what cannot be a workflow id', () => {
    expect(() => parseCommand(['op', 'a b'], io(), env)).toThrow(/bad workflow id/);
    expect(() => parseCommand(['op'], io(), env)).toThrow(/bad workflow id/);
  });
});
