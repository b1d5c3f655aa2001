import { createHmac } from 'node:crypto';
import { openApiDocument } from '../../api/openapi';
import { ReplayGuard } from '../../api/replayGuard';
import { checkTimestamp, sign, verify } from '../../api/signature';

const A = 'a'.repeat(32);
const B = 'b'.repeat(40);
const NOW = 1_750_000_000;
const NONCE = '0123456789abcdef0123456789abcdef';
const body = { method: 'POST', path: '/v1/sites', body: Buffer.from('{"site":{"siteId":"acme"}}') };
const headersOf = (h: ReturnType<typeof sign>) => ({
  timestamp: h['X-QM-Timestamp'],
  nonce: h['X-QM-Nonce'],
  signature: h['X-QM-Signature'],
});

describe('sign', () => {
  test('is HMAC-SHA256 over "<timestamp>.<nonce>.<METHOD> <path>\\n<body>", hex, v1= prefix (what a billing system computes by hand)', () => {
    const h = sign(A, body, NOW, NONCE);
    const expected = createHmac('sha256', A)
      .update(`${NOW}.${NONCE}.POST /v1/sites\n{"site":{"siteId":"acme"}}`)
      .digest('hex');
    expect(h).toEqual({
      'X-QM-Timestamp': String(NOW),
      'X-QM-Nonce': NONCE,
      'X-QM-Signature': `v1=${expected}`,
    });
  });

  test('a fresh nonce by default: the same request signed twice in one second signs differently', () => {
    const [a, b] = [sign(A, body, NOW), sign(A, body, NOW)];
    expect(a['X-QM-Nonce']).toMatch(/^[0-9a-f]{32}$/);
    expect(a['X-QM-Nonce']).not.toBe(b['X-QM-Nonce']);
    expect(a['X-QM-Signature']).not.toBe(b['X-QM-Signature']);
    expect(verify(headersOf(a), body, [A], NOW).ok).toBe(true);
    expect(verify(headersOf(b), body, [A], NOW).ok).toBe(true);
  });

  test('the published contract says what the server checks: a signer built from /openapi.json alone is accepted', () => {
    const scheme = openApiDocument().components.securitySchemes.signature;
    const how = scheme['x-qm-signing'];
    expect(scheme.name).toBe(how.signature.header);
    // fill the published template, nothing else known
    const text = how.signedText
      .replace('{timestamp}', String(NOW))
      .replace('{nonce}', NONCE)
      .replace('{method}', 'POST')
      .replace('{path}', body.path)
      .replace('{body}', body.body.toString());
    const hex = createHmac('sha256', A).update(text).digest('hex');
    const signature = how.signature.format.replace('{hex}', hex);
    expect(verify({ timestamp: String(NOW), nonce: NONCE, signature }, body, [A], NOW)).toMatchObject({
      ok: true,
    });
    expect(scheme.description).toContain('"<timestamp>.<nonce>.<METHOD> <path>\\n<raw body>"');
    expect(openApiDocument().info.description).toContain(scheme.description);
  });
});

describe('verify', () => {
  test('a good signature passes, with either secret of a rotating pair', () => {
    expect(verify(headersOf(sign(A, body, NOW)), body, [A, B], NOW).ok).toBe(true);
    expect(verify(headersOf(sign(B, body, NOW)), body, [A, B], NOW).ok).toBe(true);
  });

  test.each([
    ['another secret', () => headersOf(sign('c'.repeat(32), body, NOW)), 'mismatch'],
    ['another body', () => headersOf(sign(A, { ...body, body: '{}' }, NOW)), 'mismatch'],
    ['another path', () => headersOf(sign(A, { ...body, path: '/v1/sites/x/suspend' }, NOW)), 'mismatch'],
    ['another method', () => headersOf(sign(A, { ...body, method: 'DELETE' }, NOW)), 'mismatch'],
    [
      'path and body split differently',
      () => headersOf(sign(A, { ...body, path: '/v1/sites\n{"site"', body: ':{"siteId":"acme"}}' }, NOW)),
      'mismatch',
    ],
    [
      'another timestamp',
      () => ({ ...headersOf(sign(A, body, NOW)), timestamp: String(NOW + 1) }),
      'mismatch',
    ],
    ['another nonce', () => ({ ...headersOf(sign(A, body, NOW)), nonce: NONCE }), 'mismatch'],
    ['no nonce', () => ({ ...headersOf(sign(A, body, NOW)), nonce: undefined }), 'nonce missing'],
    ['a short nonce', () => headersOf(sign(A, body, NOW, 'abc')), 'nonce malformed'],
    ['a nonce with a dot', () => headersOf(sign(A, body, NOW, `${NONCE}.x`)), 'nonce malformed'],
    [
      'repeated nonces',
      () => ({ ...headersOf(sign(A, body, NOW)), nonce: [NONCE, NONCE] }),
      'nonce malformed',
    ],
    ['older than 5 minutes', () => headersOf(sign(A, body, NOW - 301)), 'expired'],
    ['more than 5 minutes ahead', () => headersOf(sign(A, body, NOW + 301)), 'future'],
    ['no signature', () => ({ timestamp: String(NOW), nonce: NONCE, signature: undefined }), 'missing'],
    [
      'no timestamp',
      () => ({ timestamp: undefined, nonce: NONCE, signature: sign(A, body, NOW)['X-QM-Signature'] }),
      'missing',
    ],
    [
      'no v1= prefix',
      () => ({ ...headersOf(sign(A, body, NOW)), signature: sign(A, body, NOW)['X-QM-Signature'].slice(3) }),
      'malformed',
    ],
    ['a short digest', () => ({ timestamp: String(NOW), nonce: NONCE, signature: 'v1=abcd' }), 'malformed'],
    [
      'a non-hex digest',
      () => ({ timestamp: String(NOW), nonce: NONCE, signature: `v1=${'z'.repeat(64)}` }),
      'malformed',
    ],
    [
      'a non-numeric timestamp',
      () => ({ timestamp: '1e9', nonce: NONCE, signature: `v1=${'0'.repeat(64)}` }),
      'malformed',
    ],
    [
      'repeated headers',
      () => ({ timestamp: [String(NOW), String(NOW)], nonce: NONCE, signature: `v1=${'0'.repeat(64)}` }),
      'malformed',
    ],
  ] as const)('refused: %s', (_name, headers, reason) => {
    expect(verify(headers(), body, [A, B], NOW)).toEqual({ ok: false, reason });
  });

  test('the edges of the window are inside it', () => {
    expect(verify(headersOf(sign(A, body, NOW - 300)), body, [A], NOW).ok).toBe(true);
    expect(verify(headersOf(sign(A, body, NOW + 300)), body, [A], NOW).ok).toBe(true);
    expect(checkTimestamp(String(NOW - 300), NOW).ok).toBe(true);
  });
});

describe('ReplayGuard', () => {
  test('accepts a nonce once while it is live, again after it expired', () => {
    const g = new ReplayGuard();
    expect(g.check('d1', NOW + 300, NOW)).toBe('fresh');
    expect(g.check('d1', NOW + 300, NOW + 10)).toBe('replay');
    expect(g.check('d1', NOW + 300, NOW + 300)).toBe('replay');
    expect(g.check('d1', NOW + 700, NOW + 301)).toBe('fresh'); // expired: the timestamp check refuses it anyway
  });

  test('bounded: forgets expired entries, refuses (fails closed) when full of live ones', () => {
    const g = new ReplayGuard(3);
    for (const d of ['a', 'b', 'c']) expect(g.check(d, NOW + 300, NOW)).toBe('fresh');
    expect(g.check('d', NOW + 300, NOW)).toBe('full');
    expect(g.check('a', NOW + 300, NOW)).toBe('replay'); // still remembered
    expect(g.check('d', NOW + 900, NOW + 301)).toBe('fresh'); // a, b, c expired and were dropped
    expect(g.size).toBe(1);
  });

  test('expired entries behind a live one are swept when the guard fills up', () => {
    const g = new ReplayGuard(3);
    g.check('live', NOW + 1000, NOW);
    g.check('old1', NOW + 10, NOW);
    g.check('old2', NOW + 10, NOW);
    expect(g.check('new', NOW + 400, NOW + 20)).toBe('fresh');
    expect(g.size).toBe(2);
  });
});
