import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { testSite } from '../support/site';
import { SECRET, startApi, uniqueSiteId, withApiWorker, type Api } from './harness';

/**
 * The published contract, tested the way a billing team would use it: a client that knows nothing
 * of this code base but GET /openapi.json and the shared secret. It signs as the security scheme
 * says (its `x-qm-signing` template, nothing else), finds each call by its operationId, builds the
 * path from the path template, sends the headers the spec declares, checks every body it sends and
 * every answer it gets against the spec's own schemas, and drives a site through the real worker
 * on the bed: provision → the operation's status → a retry with the same Idempotency-Key in the same
 * second → the same operation → cancel.
 *
 * Nothing from api/ is imported: only the server side (startApi) comes from the harness.
 */

type Json = Record<string, unknown>;
type Doc = {
  paths: Record<string, Record<string, Json>>;
  components: {
    schemas: Record<string, Json>;
    parameters: Record<string, Json>;
    securitySchemes: Record<string, Json>;
  };
};

interface Answer {
  status: number;
  headers: Headers;
  body: Json;
}

/** Every `$ref` into the document replaced by what it points at (the spec has no cycles). */
function deref(doc: Doc, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((n) => deref(doc, n));
  if (!node || typeof node !== 'object') return node;
  const ref = (node as { $ref?: string }).$ref;
  if (ref) {
    const target = ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((at, key) => (at as Json)[key], doc);
    return deref(doc, target);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(doc, v)]));
}

/** A client made from the OpenAPI document alone. */
class ContractClient {
  private readonly ops = new Map<string, { method: string; path: string; op: Json }>();
  readonly signing: {
    signedText: string;
    signature: { header: string; format: string };
    timestamp: { header: string };
    nonce: { header: string; pattern: string };
  };

  constructor(
    private readonly base: string,
    private readonly doc: Doc,
    private readonly secret: string,
  ) {
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item))
        if (method !== 'parameters' && op.operationId)
          this.ops.set(op.operationId as string, {
            method: method.toUpperCase(),
            path,
            op: deref(doc, {
              ...op,
              parameters: [
                ...((item.parameters as unknown as unknown[] | undefined) ?? []),
                ...((op.parameters as unknown[]) ?? []),
              ],
            }) as Json,
          });
    const scheme = Object.values(doc.components.securitySchemes).find((s) => s['x-qm-signing']);
    if (!scheme) throw new Error('the document publishes no signing scheme');
    this.signing = scheme['x-qm-signing'] as ContractClient['signing'];
  }

  /** The schema of a part of the document, as zod (what the client validates with). */
  schema(node: unknown): z.ZodType {
    return z.fromJSONSchema(deref(this.doc, node) as never);
  }

  /** The signature headers, exactly as the published template says. */
  sign(method: string, target: string, body: string, timestamp: number): Record<string, string> {
    const nonce = randomBytes(16).toString('hex');
    expect(nonce).toMatch(new RegExp(this.signing.nonce.pattern));
    const values: Record<string, string> = {
      timestamp: String(timestamp),
      nonce,
      method,
      path: target,
      body,
    };
    const text = this.signing.signedText.replace(/\{(\w+)\}/g, (_m, k: string) => values[k]!);
    const hex = createHmac('sha256', this.secret).update(text).digest('hex');
    return {
      [this.signing.timestamp.header]: String(timestamp),
      [this.signing.nonce.header]: nonce,
      [this.signing.signature.header]: this.signing.signature.format.replace('{hex}', hex),
    };
  }

  async call(
    operationId: string,
    args: {
      path?: Record<string, string>;
      headers?: Record<string, string>;
      body?: Json;
      timestamp?: number;
    } = {},
  ): Promise<Answer> {
    const found = this.ops.get(operationId);
    if (!found) throw new Error(`the document has no operation ${operationId}`);
    const { method, op } = found;
    const headers: Record<string, string> = {};
    let target = found.path;
    for (const p of op.parameters as { name: string; in: string; required?: boolean; schema: Json }[]) {
      const value = p.in === 'path' ? args.path?.[p.name] : args.headers?.[p.name];
      if (value === undefined) {
        if (p.required) throw new Error(`${operationId}: the ${p.in} parameter ${p.name} is required`);
        continue;
      }
      this.schema(p.schema).parse(value);
      if (p.in === 'path') target = target.replace(`{${p.name}}`, encodeURIComponent(value));
      else headers[p.name] = value;
    }
    let raw = '';
    const requestBody = op.requestBody as
      { required?: boolean; content: Record<string, { schema: Json }> } | undefined;
    if (args.body !== undefined) {
      if (!requestBody) throw new Error(`${operationId} takes no body`);
      this.schema(requestBody.content['application/json']!.schema).parse(args.body);
      raw = JSON.stringify(args.body);
      headers['content-type'] = 'application/json';
    } else if (requestBody?.required) throw new Error(`${operationId} needs a body`);
    if (op.security)
      Object.assign(headers, this.sign(method, target, raw, args.timestamp ?? Math.floor(Date.now() / 1000)));
    const res = await fetch(`${this.base}${target}`, { method, headers, body: raw || undefined });
    const body = (await res.json()) as Json;
    // every answer is one the document describes, in the shape it says
    const responses = op.responses as Record<string, { content?: Record<string, { schema: Json }> }>;
    const described = responses[String(res.status)];
    if (!described)
      throw new Error(`${operationId}: ${res.status} is not in the contract: ${JSON.stringify(body)}`);
    const schema = described.content?.['application/json']?.schema;
    if (schema) this.schema(schema).parse(body);
    return { status: res.status, headers: res.headers, body };
  }
}

let bed: Bed;
let api: Api;
let client: ContractClient;
beforeAll(async () => {
  bed = await openBed();
  api = await startApi(bed.env);
  const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as Doc;
  client = new ContractClient(api.url, doc, SECRET);
});
afterAll(async () => {
  await api?.close();
  await bed?.close();
});

/** Follow an operation through getOperation until it ends. */
function untilEnded(operationId: string) {
  return eventually(
    async () => {
      const r = await client.call('getOperation', { path: { id: operationId } });
      expect(r.status).toBe(200);
      return r.body.state === 'RUNNING' ? undefined : r.body;
    },
    { what: `operation ${operationId}`, timeoutMs: 150_000 },
  );
}

test('a client built from /openapi.json alone: provision → status → a same-second retry gets the same operation → cancel', async () => {
  const site = testSite({ siteId: uniqueSiteId('contract'), appServers: 1 });
  const key = `order-${randomBytes(4).toString('hex')}`;
  await withApiWorker(bed, api, async () => {
    // the same write twice in one second: each signed afresh (a new nonce), one Idempotency-Key
    const second = Math.floor(Date.now() / 1000);
    const send = () =>
      client.call('provisionSite', {
        headers: { 'Idempotency-Key': key },
        body: { site },
        timestamp: second,
      });
    const first = await send();
    const retry = await send();
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ operation: 'provision', siteId: site.siteId, created: true });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ operationId: first.body.operationId, created: false });
    expect(decodeURIComponent(first.headers.get('location') ?? '')).toBe(
      `/v1/operations/${first.body.operationId}`,
    );

    const status = await client.call('getOperation', { path: { id: first.body.operationId as string } });
    expect(status.status).toBe(200);
    expect(status.body.id).toBe(first.body.operationId);

    const done = await untilEnded(first.body.operationId as string);
    expect(done).toMatchObject({ state: 'COMPLETED', result: { siteId: site.siteId, state: 'active' } });
    // once it ended, the same key still answers with the same operation, and starts nothing
    const late = await send();
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({
      operationId: first.body.operationId,
      created: false,
      state: 'COMPLETED',
    });

    const record = await client.call('getSite', { path: { siteId: site.siteId } });
    expect(record.body).toMatchObject({ record: { state: 'active' } });

    const cancel = await client.call('deprovisionSite', {
      path: { siteId: site.siteId },
      headers: { 'Idempotency-Key': `${key}-cancel` },
    });
    expect(cancel.status).toBe(202);
    expect(await untilEnded(cancel.body.operationId as string)).toMatchObject({
      state: 'COMPLETED',
      result: { state: 'deleted' },
    });
  });
}, 240_000);
