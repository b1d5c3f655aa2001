import { DomainName, Route, withBackendState } from '../../schema/route';

const route = (over: Record<string, unknown> = {}): unknown => ({
  siteId: 'acme',
  domains: ['acme.example.org'],
  backends: [{ host: 'host2', address: '10.0.0.2', port: 8081, state: 'active' }],
  mode: 'active',
  ...over,
});

describe('DomainName', () => {
  test.each([
    'example.org',
    'www.acme-charity.org.uk',
    'xn--bcher-kva.example',
    'a.b.c.d.example.com',
    '1st.example.org',
  ])('accepts %s', (d) => expect(DomainName.safeParse(d).success).toBe(true));

  test.each([
    ['a directive terminator', 'evil.org;'],
    ['an injected directive', 'evil.org; include /etc/shadow'],
    ['a block', 'evil.org{'],
    ['a closing brace', 'evil.org}'],
    ['a double quote', 'evil".org'],
    ['a single quote', "evil'.org"],
    ['a space', 'evil.org other.org'],
    ['a newline', 'evil.org\nreturn 200'],
    ['a tab', 'evil.org\t'],
    ['a dollar (nginx variable)', '$host.org'],
    ['a backslash', 'evil\\.org'],
    ['a NUL', 'evil.org\0'],
    ['uppercase', 'Example.org'],
    ['unicode', 'bücher.example'],
    ['a cyrillic look-alike', 'exаmple.org'],
    ['a wildcard', '*.example.org'],
    ['a regex server name', '~^(.*)\\.example\\.org$'],
    ['a single label', 'localhost'],
    ['a trailing dot', 'example.org.'],
    ['a leading dot', '.example.org'],
    ['an empty label', 'a..example.org'],
    ['a label starting with a hyphen', '-a.example.org'],
    ['a label ending with a hyphen', 'a-.example.org'],
    ['an IPv4 literal', '10.0.0.1'],
    ['a port', 'example.org:80'],
    ['a path', 'example.org/x'],
    ['an over-long label', 'a'.repeat(64) + '.org'],
    ['an empty string', ''],
  ])('rejects %s', (_why, d) => expect(DomainName.safeParse(d).success).toBe(false));

  test('rejects a name over 253 characters', () => {
    const long = Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.') + '.org';
    expect(long.length).toBeGreaterThan(253);
    expect(DomainName.safeParse(long).success).toBe(false);
  });
});

describe('Route', () => {
  test('accepts a well-formed route, and no backends at all', () => {
    expect(Route.safeParse(route()).success).toBe(true);
    expect(Route.safeParse(route({ backends: [] })).success).toBe(true);
  });

  test('rejects a hostile domain anywhere in the list', () => {
    const r = Route.safeParse(route({ domains: ['ok.example.org', 'x.org;\n}\nserver{'] }));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['domains', 1]);
  });

  test.each([
    ['a site id that is a path', { siteId: '../etc' }],
    ['a site id with a dot', { siteId: 'a.b' }],
    ['no domain', { domains: [] }],
    ['a duplicate domain', { domains: ['a.example.org', 'a.example.org'] }],
    ['an unknown mode', { mode: 'paused' }],
    [
      'a backend address with a directive',
      { backends: [{ host: 'h2', address: '10.0.0.2; x', port: 80, state: 'active' }] },
    ],
    [
      'a backend port out of range',
      { backends: [{ host: 'h2', address: '10.0.0.2', port: 70000, state: 'active' }] },
    ],
    [
      'a backend state that does not exist',
      { backends: [{ host: 'h2', address: '10.0.0.2', port: 80, state: 'backup' }] },
    ],
    ['an extra field (strict)', { extra: 1 }],
    [
      'the same endpoint twice',
      {
        backends: [
          { host: 'h2', address: '10.0.0.2', port: 80, state: 'active' },
          { host: 'h3', address: '10.0.0.2', port: 80, state: 'active' },
        ],
      },
    ],
  ])('rejects %s', (_why, over) => expect(Route.safeParse(route(over)).success).toBe(false));
});

test('withBackendState changes only the backends on that host (and port, if given)', () => {
  const r = Route.parse(
    route({
      backends: [
        { host: 'host2', address: '10.0.0.2', port: 8081, state: 'active' },
        { host: 'host2', address: '10.0.0.2', port: 8082, state: 'active' },
        { host: 'host3', address: '10.0.0.3', port: 8081, state: 'active' },
      ],
    }),
  );
  expect(withBackendState(r, 'host2', 'drained').backends.map((b) => b.state)).toEqual([
    'drained',
    'drained',
    'active',
  ]);
  expect(withBackendState(r, 'host2', 'drained', 8082).backends.map((b) => b.state)).toEqual([
    'active',
    'drained',
    'active',
  ]);
  expect(r.backends.every((b) => b.state === 'active')).toBe(true); // not mutated
});
