import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadInventory } from '../../activities/fleet';
import { InvalidInputError } from '../../schema/common';
import { parseInventory } from '../../schema/inventory';

const KEY1 = 'SHA256:FPLsJQT7t5FGpOF2Te0HGCHI3cTMJnmYvuXs1FYJXlg';
const KEY2 = 'SHA256:qIGN4MSRj8sC7n1Dg6IqnGB8IO5JjdP++KqArclKUSs';

function host(over: Record<string, unknown> = {}) {
  return { name: 'web1', address: '192.0.2.10', roles: ['app'], hostKeys: [KEY1], ...over };
}

/** The message of the error parseInventory throws (failing the test if it does not throw). */
function errorOf(input: unknown): string {
  try {
    parseInventory(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return (err as Error).message;
  }
  throw new Error('parseInventory accepted an invalid inventory');
}

describe('defaults', () => {
  test('a minimal host gets user root, port 22, the standard Docker socket and no labels', () => {
    expect(parseInventory({ hosts: [host()] })).toEqual([
      {
        name: 'web1',
        address: '192.0.2.10',
        port: 22,
        user: 'root',
        roles: ['app'],
        labels: {},
        hostKeys: [KEY1],
        dockerSocket: '/run/docker.sock',
      },
    ]);
  });

  test("the file's defaults apply to every host that does not say otherwise", () => {
    const hosts = parseInventory({
      defaults: { user: 'deploy', port: 2222, dockerSocket: '/var/run/docker.sock' },
      hosts: [
        host(),
        host({ name: 'web2', user: 'ops', port: 22, dockerSocket: '/run/user/1000/docker.sock' }),
      ],
    });
    expect(hosts.map((h) => [h.user, h.port, h.dockerSocket])).toEqual([
      ['deploy', 2222, '/var/run/docker.sock'],
      ['ops', 22, '/run/user/1000/docker.sock'],
    ]);
  });

  test('partial defaults fill in the rest', () => {
    const [h] = parseInventory({ defaults: { port: 2200 }, hosts: [host()] });
    expect([h!.user, h!.port, h!.dockerSocket]).toEqual(['root', 2200, '/run/docker.sock']);
  });

  test("a patch roll's default patch: the file's, a host's own, or none (the workflow's default)", () => {
    const hosts = parseInventory({
      defaults: { patchCommand: ['echo', 'nothing patched'] },
      hosts: [host(), host({ name: 'web2', patchCommand: ['dnf', '-y', 'upgrade'] })],
    });
    expect(hosts.map((h) => h.patchCommand)).toEqual([
      ['echo', 'nothing patched'],
      ['dnf', '-y', 'upgrade'],
    ]);
    expect(parseInventory({ hosts: [host()] })[0]).not.toHaveProperty('patchCommand');
    expect(errorOf({ defaults: { patchCommand: [] }, hosts: [host()] })).toContain('defaults.patchCommand');
  });

  test('several pinned keys, labels, IPv6 and DNS names are accepted', () => {
    const hosts = parseInventory({
      hosts: [
        host({ hostKeys: [KEY1, KEY2], labels: { 'dc.zone': 'fra-1' } }),
        host({ name: 'web2', address: '2001:db8::7' }),
        host({ name: 'web3', address: 'web3.example.org' }),
      ],
    });
    expect(hosts.map((h) => h.address)).toEqual(['192.0.2.10', '2001:db8::7', 'web3.example.org']);
    expect(hosts[0]!.hostKeys).toEqual([KEY1, KEY2]);
    expect(hosts[0]!.labels).toEqual({ 'dc.zone': 'fra-1' });
  });
});

describe('errors name the bad field', () => {
  test.each([
    ['a fingerprint not in SHA256: form', { hostKeys: [KEY1, 'MD5:aa:bb'] }, 'hosts.1.hostKeys.1', /SHA256/],
    ['a fingerprint of the wrong length', { hostKeys: [KEY1.slice(0, -1)] }, 'hosts.1.hostKeys.0', /SHA256/],
    ['no pinned key', { hostKeys: [] }, 'hosts.1.hostKeys', /pin at least one host key/],
    [
      'an address that is none of IPv4, IPv6, hostname',
      { address: '10.0.0.1; rm -rf /' },
      'hosts.1.address',
      /./,
    ],
    ['a port out of range', { port: 70000 }, 'hosts.1.port', /./],
    ['a fractional port', { port: 22.5 }, 'hosts.1.port', /./],
    ['a user name with a shell metacharacter', { user: 'root$(id)' }, 'hosts.1.user', /Unix user name/],
    ['an unknown role', { roles: ['app', 'mainframe'] }, 'hosts.1.roles.1', /./],
    ['no role', { roles: [] }, 'hosts.1.roles', /at least one role/],
    [
      'a relative Docker socket',
      { dockerSocket: 'run/docker.sock' },
      'hosts.1.dockerSocket',
      /absolute path/,
    ],
    ['an upper-case label key', { labels: { Zone: 'a' } }, 'hosts.1.labels.Zone', /key/],
    ['a host name with shell metacharacters', { name: 'web;reboot' }, 'hosts.1.name', /lowercase letters/],
    ['a host name with a leading hyphen', { name: '-web' }, 'hosts.1.name', /lowercase letters/],
    ['an unknown field (a typo)', { hostkeys: [KEY1] }, 'hosts.1', /hostkeys/],
  ])('%s', (_what, over, field, message) => {
    const text = errorOf({ hosts: [host({ name: 'ok1' }), host({ name: 'ok2', ...over })] });
    const issue = text
      .replace(/^invalid inventory: /, '')
      .split('; ')
      .find((i) => i.startsWith(`${field}: `));
    expect({ text, found: issue !== undefined }).toEqual({ text, found: true });
    expect(issue).toMatch(message);
  });

  test('every bad field is named in one message, not only the first', () => {
    const text = errorOf({
      hosts: [host({ port: 0 }), host({ name: 'web2', hostKeys: ['nope'], roles: ['cloud'] })],
    });
    expect(text).toMatch(/^invalid inventory: /);
    for (const field of ['hosts.0.port', 'hosts.1.hostKeys.0', 'hosts.1.roles.0'])
      expect(text).toContain(`${field}: `);
  });

  test('an empty fleet, a missing hosts list and a non-object are refused', () => {
    expect(errorOf({ hosts: [] })).toMatch(/hosts: the fleet needs at least one host/);
    expect(errorOf({})).toMatch(/hosts: /);
    expect(errorOf(null)).toMatch(/\(input\): /);
    expect(errorOf({ hosts: [host()], extra: 1 })).toMatch(/extra/);
  });

  test('bad defaults are named too', () => {
    expect(errorOf({ defaults: { user: 'Root' }, hosts: [host()] })).toMatch(/defaults\.user: /);
  });
});

describe('duplicates', () => {
  test('two hosts with the same name are refused, naming the second', () => {
    const text = errorOf({ hosts: [host(), host({ address: '192.0.2.11' }), host({ name: 'web3' })] });
    expect(text).toContain('hosts.1.name: duplicate host name web1');
    expect(text).not.toContain('hosts.0.name');
  });

  test('each further duplicate is named', () => {
    const text = errorOf({ hosts: [host(), host(), host()] });
    expect(text).toContain('hosts.1.name: duplicate host name web1');
    expect(text).toContain('hosts.2.name: duplicate host name web1');
  });
});

describe('loadInventory reads JSON and YAML files alike', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-inventory-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the same inventory in YAML and JSON gives the same hosts', () => {
    const inv = { defaults: { port: 2222 }, hosts: [host(), host({ name: 'web2', user: 'ops' })] };
    fs.writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify(inv));
    fs.writeFileSync(
      path.join(dir, 'fleet.yaml'),
      [
        'defaults:',
        '  port: 2222',
        'hosts:',
        '  - { name: web1, address: 192.0.2.10, roles: [app], hostKeys: ["' + KEY1 + '"] }',
        '  - name: web2',
        '    address: 192.0.2.10',
        '    user: ops',
        '    roles: [app]',
        '    hostKeys:',
        '      - ' + KEY1,
        '',
      ].join('\n'),
    );
    const fromJson = loadInventory(path.join(dir, 'fleet.json'));
    expect(loadInventory(path.join(dir, 'fleet.yaml'))).toEqual(fromJson);
    expect(fromJson.map((h) => [h.name, h.user, h.port])).toEqual([
      ['web1', 'root', 2222],
      ['web2', 'ops', 2222],
    ]);
  });

  test('a YAML file with a bad field names it', () => {
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(file, 'hosts:\n  - { name: web1, address: 192.0.2.10, roles: [app], hostKeys: [x] }\n');
    expect(() => loadInventory(file)).toThrow(/hosts\.0\.hostKeys\.0: must be an OpenSSH SHA256 fingerprint/);
  });
});
