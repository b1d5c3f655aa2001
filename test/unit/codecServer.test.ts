import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmCodec, keyId } from '../../client/codec';
import { createCodecServer, redactCodecUrl, uiCodecEndpoint } from '../../workers/codecServer';

const key = randomBytes(32);
const codec = new AesGcmCodec([{ id: keyId(key), key }]);
const TOKEN = randomBytes(24).toString('hex');
const UI = 'http://localhost:8233';
const app = createCodecServer({ codec, token: TOKEN, uiOrigins: [UI] });
let base = '';
beforeAll(async () => {
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => app.close());

/** A real HTTP request to the listening server (as the browser or the Temporal CLI makes it). */
async function send(o: { method: string; url: string; headers?: Record<string, string>; payload?: unknown }) {
  const res = await fetch(`${base}${o.url}`, {
    method: o.method,
    headers: { ...(o.payload !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
    body: o.payload !== undefined ? JSON.stringify(o.payload) : undefined,
  });
  const text = await res.text();
  return {
    statusCode: res.status,
    headers: Object.fromEntries(res.headers.entries()) as Record<string, string | undefined>,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    json: (): any => JSON.parse(text),
  };
}

const asJson = (ps: Payload[]) => ({
  payloads: ps.map((p) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
    ),
    data: Buffer.from(p.data!).toString('base64'),
  })),
});

describe('codec server (the Web UI remote codec protocol)', () => {
  test('decodes what the worker encrypted, with the bearer token or the token in the path', async () => {
    const encrypted = await codec.encode([defaultPayloadConverter.toPayload({ domain: 'acme.example' })!]);
    for (const [url, headers] of [
      ['/codec/decode', { authorization: `Bearer ${TOKEN}` }],
      [`${new URL(uiCodecEndpoint('http://x', TOKEN)).pathname}/decode`, {}],
    ] as const) {
      const r = await send({
        method: 'POST',
        url,
        headers: { ...headers, 'x-namespace': 'default' },
        payload: asJson(encrypted),
      });
      expect(r.statusCode).toBe(200);
      const out = r.json() as ReturnType<typeof asJson>;
      const p = out.payloads[0]!;
      expect(Buffer.from(p.metadata.encoding!, 'base64').toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(p.data, 'base64').toString())).toEqual({ domain: 'acme.example' });
    }
  });

  test('encode round-trips through decode', async () => {
    const plain = asJson([defaultPayloadConverter.toPayload('hello')!]);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const enc = await send({ method: 'POST', url: '/codec/encode', headers: auth, payload: plain });
    expect(Buffer.from(enc.json().payloads[0].metadata.encoding, 'base64').toString()).toBe(
      'binary/encrypted',
    );
    const dec = await send({
      method: 'POST',
      url: '/codec/decode',
      headers: auth,
      payload: enc.json(),
    });
    expect(dec.json()).toEqual(plain);
  });

  test.each([
    ['no token', '/codec/decode', {}],
    ['a wrong bearer token', '/codec/decode', { authorization: `Bearer ${'x'.repeat(48)}` }],
    ['a wrong path token', `/codec/${'x'.repeat(48)}/decode`, {}],
    ['the token as the wrong kind of auth', '/codec/decode', { authorization: `Basic ${TOKEN}` }],
  ])('%s → 401, nothing decoded', async (_n, url, headers) => {
    const r = await send({ method: 'POST', url, headers, payload: { payloads: [] } });
    expect(r.statusCode).toBe(401);
  });

  test('CORS: the Web UI origin may call it (preflight and request); another origin is not allowed', async () => {
    const pre = await send({
      method: 'OPTIONS',
      url: '/codec/decode',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace',
      },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(UI);
    expect(String(pre.headers['access-control-allow-headers'])).toMatch(/X-Namespace/);
    const evil = await send({
      method: 'OPTIONS',
      url: '/codec/decode',
      headers: { origin: 'http://evil.example' },
    });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  test('bad payloads → 400; a payload under an unknown key → 422 naming the key id', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect(
      (
        await send({
          method: 'POST',
          url: '/codec/decode',
          headers: auth,
          payload: { payloads: [{ data: '%%%' }] },
        })
      ).statusCode,
    ).toBe(400);
    const other = new AesGcmCodec([{ id: 'other', key: randomBytes(32) }]);
    const foreign = await other.encode([defaultPayloadConverter.toPayload(1)!]);
    const r = await send({
      method: 'POST',
      url: '/codec/decode',
      headers: auth,
      payload: asJson(foreign),
    });
    expect(r.statusCode).toBe(422);
    expect(r.json().message).toContain('other');
  });

  test('what the Temporal CLI sends: {} (no payloads) and Go field shapes are accepted', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    // an empty list is an empty object in protobuf JSON and in Go's encoding/json (omitempty)
    for (const direction of ['encode', 'decode'])
      for (const body of [{}, { payloads: null }, { payloads: [] }]) {
        const r = await send({ method: 'POST', url: `/codec/${direction}`, headers: auth, payload: body });
        expect([direction, body, r.statusCode, r.json()]).toEqual([direction, body, 200, { payloads: [] }]);
      }
    // a payload without metadata or data, and a field this server does not know, decode as they are
    const encrypted = asJson(await codec.encode([defaultPayloadConverter.toPayload({ q: 1 })!]));
    const r = await send({
      method: 'POST',
      url: '/codec/decode',
      headers: auth,
      payload: {
        payloads: [{ ...encrypted.payloads[0], external_payloads: null }, { metadata: null }, {}],
        unknown_field: 1,
      },
    });
    expect(r.statusCode).toBe(200);
    const [first, second, third] = r.json().payloads;
    expect(JSON.parse(Buffer.from(first.data, 'base64').toString())).toEqual({ q: 1 });
    expect([second, third]).toEqual([
      { metadata: {}, data: '' },
      { metadata: {}, data: '' },
    ]);
  });

  test('the token never reaches a log line', () => {
    expect(redactCodecUrl(`/codec/${TOKEN}/decode`)).toBe('/codec/***/decode');
    expect(redactCodecUrl('/codec/decode')).toBe('/codec/decode');
  });

  test('refuses a short token at start', () => {
    expect(() => createCodecServer({ codec, token: 'short', uiOrigins: [] })).toThrow(/32 characters/);
  });
});
