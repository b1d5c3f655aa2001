import { OperationResponse, OperationStarted } from '../../api/responses';
import { sign } from '../../api/signature';
import { testSite } from '../support/site';
import { openBed, type Bed } from '../support/bed';
import {
  listIds,
  OLD_SECRET,
  rawRequest,
  SECRET,
  request,
  startApi,
  uniqueSiteId,
  type Api,
} from './harness';

/**
 * The billing API against the real Temporal dev server: signatures, replays, validation and
 * idempotency, each checked by what Temporal then holds (visibility), not by what the API says.
 * No worker runs here: started operations wait on the task queue and are terminated at the end.
 */

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

const now = () => Math.floor(Date.now() / 1000);
const onQueue = (extra = '') => listIds(api.client, `TaskQueue = '${api.taskQueue}'${extra}`);

describe('signatures', () => {
  const get = (over: Parameters<typeof request>[1] extends infer S ? Partial<S> : never) =>
    request(api, { path: '/v1/sites/no-such-site', ...over });

  test('a good signature passes (the site is unknown: 404, not 401)', async () => {
    const r = await get({});
    expect(r.status).toBe(404);
    expect(r.json.error).toBe('site_not_found');
  });

  test('the secret being rotated out still passes', async () => {
    expect((await get({ secret: OLD_SECRET })).status).toBe(404);
  });

  test.each([
    ['unsigned', { secret: false as const }, 'timestamp missing'],
    ['another secret', { secret: 'x'.repeat(64) }, 'mismatch'],
    ['expired (6 minutes old)', { timestamp: now() - 360 }, 'expired'],
    ['from the future (6 minutes ahead)', { timestamp: now() + 360 }, 'future'],
    ['bad signature', { headers: { 'x-qm-signature': `v1=${'0'.repeat(64)}` } }, 'mismatch'],
    ['malformed signature', { headers: { 'x-qm-signature': 'sha256=abc' } }, 'malformed'],
  ])('%s → 401', async (_name, over, reason) => {
    const r = await get(over);
    expect(r.status).toBe(401);
    expect(r.json).toEqual({ error: 'unauthorized', message: expect.stringContaining(reason) });
  });

  test('a signature is good for its own body only', async () => {
    const site = testSite({ siteId: uniqueSiteId('sig') });
    const headers = sign(OLD_SECRET, { method: 'POST', path: '/v1/sites', body: JSON.stringify({ site }) });
    const r = await rawRequest(
      api.url,
      'POST',
      '/v1/sites',
      { ...headers, 'content-type': 'application/json', 'idempotency-key': 'k1' },
      Buffer.from(JSON.stringify({ site: { ...site, plan: 'enterprise' } })),
    );
    expect(r.status).toBe(401);
    expect(await onQueue(` AND SiteId = '${site.siteId}'`)).toEqual([]);
  });

  test('a replayed request is refused; its signature is no good on another path either', async () => {
    const path = `/v1/sites/${uniqueSiteId('replay')}/suspend`;
    const body = Buffer.from('{"reason":"invoice 9"}');
    const headers = {
      ...sign(OLD_SECRET, { method: 'POST', path, body }),
      'content-type': 'application/json',
      'idempotency-key': 'r1',
    };
    const first = await rawRequest(api.url, 'POST', path, headers, body);
    expect(first.status).toBe(404); // authenticated; the site is unknown
    const again = await rawRequest(api.url, 'POST', path, headers, body);
    expect(again.status).toBe(401);
    expect(again.json.message).toContain('replay');
    const elsewhere = await rawRequest(api.url, 'POST', '/v1/sites/other/suspend', headers, body);
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.json.message).toContain('mismatch');
    // a GET may be repeated (a poll): it reads, it cannot act
    const read = { ...sign(SECRET, { method: 'GET', path: '/v1/sites/replay-a', body: '' }) };
    expect((await rawRequest(api.url, 'GET', '/v1/sites/replay-a', read, Buffer.alloc(0))).status).toBe(404);
    expect((await rawRequest(api.url, 'GET', '/v1/sites/replay-a', read, Buffer.alloc(0))).status).toBe(404);
  });

  test('health and the OpenAPI document need no signature', async () => {
    const health = await request(api, { path: '/healthz', secret: false });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok', temporal: 'ok' });
    const doc = await request(api, { path: '/openapi.json', secret: false });
    expect(doc.status).toBe(200);
    expect(doc.json.openapi).toBe('3.1.0');
  });
});

describe('the OpenAPI document', () => {
  test('describes every route the server has, and only those', async () => {
    const doc = (await request(api, { path: '/openapi.json', secret: false })).json as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) =>
        Object.keys(ops)
          .filter((m) => m !== 'parameters')
          .map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`),
      )
      .sort();
    expect(documented).toEqual(
      [
        'POST /v1/sites',
        'GET /v1/sites/:siteId',
        'DELETE /v1/sites/:siteId',
        'POST /v1/sites/:siteId/suspend',
        'POST /v1/sites/:siteId/resume',
        'PATCH /v1/sites/:siteId/plan',
        'POST /v1/sites/:siteId/backups',
        'POST /v1/sites/:siteId/restore',
        'POST /v1/sites/:siteId/deploy',
        'POST /v1/sites/:siteId/rollback',
        'POST /v1/sites/:siteId/repair',
        'GET /v1/operations/:id',
        'GET /healthz',
        'GET /openapi.json',
      ].sort(),
    );
    for (const route of documented) {
      const [method, url] = route.split(' ') as [string, string];
      expect(api.app.hasRoute({ method: method as 'GET', url })).toBe(true);
    }
    // the request schemas are the workflows' own: the site spec's fields are all there
    const provision = doc.components.schemas.ProvisionRequest!;
    expect(Object.keys((provision.properties!.site as { properties: object }).properties)).toEqual(
      expect.arrayContaining(['siteId', 'customerId', 'plan', 'profile', 'domains', 'git', 'appServers']),
    );
  });
});

describe('bad input: a 4xx naming the field, and nothing started', () => {
  test('a bad spec: every bad field named with its path', async () => {
    const siteId = uniqueSiteId('bad');
    const site = { ...testSite({ siteId }), domains: ['ok.example', 'évil.example'], colour: 'red' };
    const r = await request(api, { method: 'POST', path: '/v1/sites', body: { site }, idempotencyKey: 'k1' });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      error: 'invalid_request',
      fields: {
        'site.domains.1': expect.stringContaining('lowercase ASCII'),
        'site.colour': 'unknown field',
      },
    });
    expect(await onQueue(` AND SiteId = '${siteId}'`)).toEqual([]);
  });

  test('no Idempotency-Key, a bad one, a bad site id in the path: all named at once', async () => {
    const r = await request(api, {
      method: 'POST',
      path: '/v1/sites/..%2F..%2Fetc/suspend',
      body: { reason: 7 },
    });
    expect(r.status).toBe(400);
    expect(Object.keys(r.json.fields!).sort()).toEqual([
      'headers.idempotency-key',
      'params.siteId',
      'reason',
    ]);
    const bad = await request(api, {
      method: 'DELETE',
      path: '/v1/sites/acme',
      idempotencyKey: 'rm -rf /',
    });
    expect(bad.status).toBe(400);
    expect(bad.json.fields).toEqual({ 'headers.idempotency-key': expect.any(String) });
  });

  test('not JSON → 400; another content type → 415; over 64 KiB → 413', async () => {
    const notJson = await request(api, {
      method: 'POST',
      path: '/v1/sites',
      body: '{"site":',
      idempotencyKey: 'k',
    });
    expect(notJson.status).toBe(400);
    expect(notJson.json.fields).toEqual({ '(body)': 'the body is not valid JSON' });

    const form = await request(api, {
      method: 'POST',
      path: '/v1/sites',
      body: 'site=acme',
      idempotencyKey: 'k',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.json.error).toBe('unsupported_media_type');

    const huge = JSON.stringify({ site: { ...testSite(), junk: 'x'.repeat(70 * 1024) } });
    const big = await request(api, { method: 'POST', path: '/v1/sites', body: huge, idempotencyKey: 'k' });
    expect(big.status).toBe(413);
    expect(big.json.error).toBe('payload_too_large');
  });

  test.each([
    ['PATCH', 'plan', { plan: 'gold' }, ['plan']],
    ['PATCH', 'plan', {}, ['plan']],
    ['POST', 'restore', { backupId: '../../etc' }, ['backupId']],
    ['POST', 'restore', { backupId: '20260301T010000Z-k3x9q1', prune: false }, ['prune']],
    ['POST', 'deploy', { ref: 'main; rm -rf /' }, ['ref']],
    ['POST', 'deploy', { ref: 'main', commit: 'a'.repeat(40) }, ['commit']],
    ['POST', 'deploy', {}, ['commit']],
    ['POST', 'deploy', { commit: 'A'.repeat(40), drainSeconds: 0 }, ['commit', 'drainSeconds']],
    ['POST', 'rollback', { release: 'HEAD~1' }, ['release']],
    ['POST', 'backups', { prune: false }, ['prune']],
    ['POST', 'repair', { drainSeconds: 0, reason: 'x'.repeat(201) }, ['drainSeconds', 'reason']],
  ] as const)('%s %s %j → 400 naming %j, nothing started', async (method, route, body, fields) => {
    const siteId = uniqueSiteId('bad');
    const r = await request(api, {
      method,
      path: `/v1/sites/${siteId}/${route}`,
      body,
      idempotencyKey: 'b1',
    });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_request');
    expect(Object.keys(r.json.fields!).sort()).toEqual([...fields].sort());
    expect(await onQueue(` AND SiteId = '${siteId}'`)).toEqual([]);
  });

  test('an operation on a site the platform does not know → 404', async () => {
    const siteId = uniqueSiteId('ghost');
    for (const [method, path, body] of [
      ['POST', `/v1/sites/${siteId}/suspend`, {}],
      ['POST', `/v1/sites/${siteId}/resume`, {}],
      ['DELETE', `/v1/sites/${siteId}`, undefined],
      ['PATCH', `/v1/sites/${siteId}/plan`, { plan: 'business' }],
      ['POST', `/v1/sites/${siteId}/backups`, {}],
      ['POST', `/v1/sites/${siteId}/restore`, { backupId: '20260301T010000Z-k3x9q1' }],
      ['POST', `/v1/sites/${siteId}/deploy`, { ref: 'main' }],
      ['POST', `/v1/sites/${siteId}/rollback`, { release: 'initial' }],
      ['POST', `/v1/sites/${siteId}/repair`, {}],
    ] as const) {
      const r = await request(api, { method, path, idempotencyKey: 'k1', ...(body ? { body } : {}) });
      expect(r.status).toBe(404);
      expect(r.json.error).toBe('site_not_found');
    }
    expect(await onQueue(` AND SiteId = '${siteId}'`)).toEqual([]);
  });
});

describe('idempotency', () => {
  test('the same key twice → one workflow, the same operation (200 the second time)', async () => {
    const site = testSite({ siteId: uniqueSiteId('idem') });
    // A retry is signed afresh (each signature is accepted once): a distinct timestamp each time.
    const t0 = now();
    let retry = 0;
    const send = () =>
      request(api, {
        method: 'POST',
        path: '/v1/sites',
        body: { site },
        idempotencyKey: 'order-4711',
        timestamp: t0 - retry++,
      });
    const first = await send();
    expect(first.status).toBe(202);
    const started = OperationStarted.parse(first.json);
    expect(started).toMatchObject({
      operationId: `provision:${site.siteId}:order-4711`,
      created: true,
      queued: false,
      state: 'RUNNING',
    });
    expect(first.headers.location).toBe(`/v1/operations/${encodeURIComponent(started.operationId)}`);

    // the same request again, and several at once (a retrying billing system): never a second workflow
    const again = await Promise.all([send(), send(), send()]);
    for (const r of again) {
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ operationId: started.operationId, created: false });
    }
    const ids = await listIds(api.client, `SiteId = '${site.siteId}'`);
    expect(ids).toEqual([started.operationId]);

    // the same key for another request: refused, still one workflow
    const other = await request(api, {
      method: 'POST',
      path: '/v1/sites',
      body: { site: { ...site, plan: 'enterprise' } },
      idempotencyKey: 'order-4711',
    });
    expect(other.status).toBe(409);
    expect(other.json.error).toBe('idempotency_key_reused');

    // a finished operation is returned too, and still not started again
    await api.rawClient.workflow.getHandle(started.operationId).terminate('test');
    const afterEnd = await send();
    expect(afterEnd.status).toBe(200);
    expect(afterEnd.json).toMatchObject({
      operationId: started.operationId,
      created: false,
      state: 'TERMINATED',
    });
    expect(await listIds(api.client, `SiteId = '${site.siteId}'`)).toEqual([started.operationId]);

    // GET /v1/operations/:id says how it ended
    const view = await request(api, { path: `/v1/operations/${started.operationId}` });
    expect(view.status).toBe(200);
    expect(OperationResponse.parse(view.json)).toMatchObject({
      id: started.operationId,
      state: 'TERMINATED',
      error: { message: 'test' },
    });
  });

  test('a running operation with no worker to answer: its state, and progress null (not a hang)', async () => {
    const site = testSite({ siteId: uniqueSiteId('nowk') });
    const r = await request(api, { method: 'POST', path: '/v1/sites', body: { site }, idempotencyKey: 'a1' });
    expect(r.status).toBe(202);
    const t0 = Date.now();
    const view = await request(api, { path: `/v1/operations/${r.json.operationId}` });
    expect({ status: view.status, body: view.json }).toMatchObject({
      status: 200,
      body: { state: 'RUNNING', progress: null },
    });
    OperationResponse.parse(view.json);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const unknown = await request(api, { path: `/v1/operations/provision:${site.siteId}:nope` });
    expect(unknown.status).toBe(404);
    const hostile = await request(api, { path: `/v1/operations/site:${site.siteId}` });
    expect(hostile.status).toBe(400);
  });
});

describe('secrets out of history', () => {
  test("a provision's history holds no plaintext of the spec; with the codec it decodes", async () => {
    const marker = `m${Date.now().toString(36)}x`;
    const site = testSite({ siteId: uniqueSiteId('enc'), domains: [`${marker}.customer.example`] });
    const r = await request(api, {
      method: 'POST',
      path: '/v1/sites',
      body: { site },
      idempotencyKey: 'enc1',
    });
    expect(r.status).toBe(202);
    const id = r.json.operationId as string;

    const raw = await api.rawClient.workflow.getHandle(id).fetchHistory();
    const bytes: Buffer[] = [];
    const walk = (v: unknown): void => {
      if (v instanceof Uint8Array) bytes.push(Buffer.from(v));
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(raw);
    const everything = Buffer.concat([...bytes, Buffer.from(JSON.stringify(raw))]);
    expect(everything.includes(marker)).toBe(false);
    expect(everything.includes(site.customerId!)).toBe(true); // a search attribute: plain by design

    // the same history, decoded with the codec: the marker is there (the check above can fail)
    const started = raw.events!.find((e) => e.workflowExecutionStartedEventAttributes)!;
    const payloads = started.workflowExecutionStartedEventAttributes!.input!.payloads!;
    const decoded = await api.codec.decode(payloads);
    expect(Buffer.from(decoded[0]!.data!).toString()).toContain(marker);
  });
});
