import {
  fieldErrors,
  parseJsonStrict,
  ProvisionRequest,
  SiteParams,
  SuspendRequest,
} from '../../api/requests';
import { IdempotencyKey, OperationId } from '../../client/operations';
import { ProvisionSiteInput } from '../../protocol/operations';

const spec = {
  siteId: 'acme',
  customerId: 'cust-1',
  plan: 'starter',
  profile: 'test-busybox',
  domains: ['acme.example'],
  git: { repo: 'customers/acme.git' },
};

describe('request schemas', () => {
  test('what the API accepts, the workflow accepts (the same schema)', () => {
    const body = ProvisionRequest.parse({ site: spec });
    expect(ProvisionSiteInput.safeParse({ ...body, triggeredBy: 'api:billing' }).success).toBe(true);
  });

  test('every bad field is named, with its path; unknown fields are named too', () => {
    const r = ProvisionRequest.safeParse({
      site: { ...spec, domains: ['ok.example', 'bad domain'], colour: 'red', appServers: 99 },
      triggeredBy: 'me',
    });
    expect(r.success).toBe(false);
    expect(fieldErrors(r.error!)).toEqual({
      'site.domains.1': expect.stringContaining('lowercase ASCII'),
      'site.colour': 'unknown field',
      'site.appServers': expect.any(String),
      triggeredBy: 'unknown field',
    });
  });

  test('the caller cannot set skip-final-backup or triggeredBy through the API', () => {
    expect(SuspendRequest.safeParse({ reason: 'invoice 7' }).success).toBe(true);
    expect(SuspendRequest.safeParse({ triggeredBy: 'x' }).success).toBe(false);
  });

  test.each([
    '../etc',
    'acme;rm -rf',
    'acme$(id)',
    'аcme', // Cyrillic а
    'ACME',
    'a',
    '-acme',
    'acme\n',
    'acme/..',
    '%2e%2e',
    'a'.repeat(41),
  ])('hostile site id refused: %j', (siteId) => {
    expect(SiteParams.safeParse({ siteId }).success).toBe(false);
  });

  test('not JSON at all: the whole body is the field', () => {
    const r = SuspendRequest.safeParse([1, 2]);
    expect(fieldErrors(r.error!)).toEqual({ '(body)': expect.any(String) });
  });

  test('prefixes place header and path errors', () => {
    const r = IdempotencyKey.safeParse('bad key!');
    expect(Object.keys(fieldErrors(r.error!, 'headers.idempotency-key'))).toEqual([
      'headers.idempotency-key',
    ]);
  });
});

describe('Idempotency-Key and operation ids', () => {
  test.each(['ord_123', 'INV-2024-0001', 'a', 'x'.repeat(64)])('accepted: %s', (k) =>
    expect(IdempotencyKey.safeParse(k).success).toBe(true),
  );
  test.each(['', '-x', '_x', 'a b', 'a:b', 'a/b', 'a.b', 'x'.repeat(65), 'é', undefined])(
    'refused: %j',
    (k) => expect(IdempotencyKey.safeParse(k).success).toBe(false),
  );

  test('an operation id is <operation>:<siteId>:<key>, each part checked', () => {
    expect(OperationId.parse('provision:acme:ord_1')).toEqual({
      id: 'provision:acme:ord_1',
      kind: 'provision',
      siteId: 'acme',
      key: 'ord_1',
    });
    for (const bad of [
      'site:acme',
      'checkFleet:acme:k',
      'provision:acme',
      'provision:ACME:k',
      'provision:acme:k:x',
      'provision:../x:k',
    ])
      expect(OperationId.safeParse(bad).success).toBe(false);
  });
});

describe('JSON bodies: a key given twice is refused, at any depth', () => {
  test.each([
    ['{"a":1,"a":2}', 'a', 'a'],
    ['{"site":{"plan":"x","domains":["a"],"plan":"y"}}', 'plan', 'site.plan'],
    ['{"a":[{"b":1},{"b":1,"c":"\\"b\\"","b":2}]}', 'b', 'a.1.b'],
    ['{"k":"a\\\\","k":1}', 'k', 'k'],
    ['{"\\u0061":1,"a":2}', 'a', 'a'],
    ['[{"x":{}},{"x":{"y":[1,{"z":0,"z":0}]}}]', 'z', '1.x.y.1.z'],
  ])('%s: %s at %s', (text, key, path) => {
    expect(parseJsonStrict(text)).toEqual({ ok: false, key, path });
  });

  test('the same key in different objects, strings that look like keys, and scalars pass', () => {
    for (const text of [
      '{"a":{"b":1},"c":{"b":1}}',
      '[{"a":1},{"a":1}]',
      '{"a":"\\"a\\":1","b":"a"}',
      '7',
      '"a"',
      '{}',
    ])
      expect(parseJsonStrict(text)).toEqual({ ok: true, value: JSON.parse(text) });
    expect(() => parseJsonStrict('{"a":')).toThrow(SyntaxError);
  });
});
