import { ApplicationFailure } from '@temporalio/common';
import { containerCreateOptions, labelFilter } from '../../activities/docker/commands';
import { loadError } from '../../activities/docker/image';
import { EnsureContainerInput, ListContainersInput, parseInput } from '../../activities/docker/inputs';
import { canonicalSpec, specHash } from '../../activities/docker/specHash';
import { ContainerSpec, type ContainerSpecInput } from '../../schema/container';

const base: ContainerSpecInput = {
  name: 'site-example-web',
  image: 'local/busybox:1',
  cmd: ['httpd', '-f', '-p', '80', '-h', '/www'],
  env: { SITE: 'example', DB_PASSWORD: 's3cret' },
  labels: { 'qm.site': 'example' },
  ports: [
    { containerPort: 80, hostPort: 8080 },
    { containerPort: 443, hostPort: 8443 },
  ],
  mounts: [
    { type: 'bind', source: '/srv/example/files', target: '/files' },
    { type: 'volume', source: 'example-db', target: '/var/lib/db' },
  ],
  healthcheck: { test: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/'], intervalMs: 1000 },
};
const spec = (over: Partial<ContainerSpecInput> = {}) => ContainerSpec.parse({ ...base, ...over });

/** The same object with its keys in reverse order at every level. */
function reversed<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reversed) as T;
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reversed(v)]),
    ) as T;
  return value;
}

describe('specHash', () => {
  test('is a 64-hex SHA-256 and stable across calls', () => {
    expect(specHash(spec())).toMatch(/^[0-9a-f]{64}$/);
    expect(specHash(spec())).toBe(specHash(spec()));
  });

  test('does not depend on key order, at any level', () => {
    const a = spec();
    const b = reversed(a);
    // the test really reorders, at the top and inside env
    expect(Object.keys(b)).not.toEqual(Object.keys(a));
    expect(Object.keys(b.env)).not.toEqual(Object.keys(a.env));
    expect(specHash(b)).toBe(specHash(a));
    // and through the schema too (zod rebuilds objects, records keep the caller's order)
    expect(specHash(ContainerSpec.parse(reversed(base)))).toBe(specHash(a));
  });

  test('does not depend on the order of ports or mounts (Docker ignores it)', () => {
    const a = spec();
    const b = spec({ ports: [...base.ports!].reverse(), mounts: [...base.mounts!].reverse() });
    expect(specHash(b)).toBe(specHash(a));
  });

  test('a spec that spells out the defaults hashes like one that leaves them out', () => {
    const explicit = spec({ init: true, restart: 'unless-stopped', stopTimeoutSec: 10 });
    expect(specHash(explicit)).toBe(specHash(spec()));
  });

  test('changes when an env value, an env name, the image or the cmd changes', () => {
    const h = specHash(spec());
    expect(specHash(spec({ env: { ...base.env, DB_PASSWORD: 's3cret2' } }))).not.toBe(h);
    expect(specHash(spec({ env: { ...base.env, EXTRA: '' } }))).not.toBe(h);
    expect(specHash(spec({ image: 'local/busybox:2' }))).not.toBe(h);
    expect(specHash(spec({ cmd: ['httpd', '-p', '80', '-f', '-h', '/www'] }))).not.toBe(h); // argv order matters
    expect(specHash(spec({ init: false }))).not.toBe(h);
  });

  test('keeps env values out of the canonical form only as a hash: the label holds no secret', () => {
    expect(JSON.stringify(canonicalSpec(spec()))).toContain('s3cret'); // hashed over...
    const opts = containerCreateOptions(spec());
    expect(JSON.stringify(opts.Labels)).not.toContain('s3cret'); // ...but never stored in clear
  });
});

describe('containerCreateOptions', () => {
  test('builds the API body: env sorted, ports, mounts, healthcheck in ns, init, restart, hash label', () => {
    const o = containerCreateOptions(spec({ memoryMb: 64 }));
    expect(o.name).toBe('site-example-web');
    expect(o.Image).toBe('local/busybox:1');
    expect(o.Env).toEqual(['DB_PASSWORD=s3cret', 'SITE=example']);
    expect(o.Labels).toEqual({ 'qm.site': 'example', 'qm.spec-hash': specHash(spec({ memoryMb: 64 })) });
    expect(o.ExposedPorts).toEqual({ '80/tcp': {}, '443/tcp': {} });
    expect(o.HostConfig?.PortBindings).toEqual({
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '443/tcp': [{ HostIp: '', HostPort: '8443' }],
    });
    expect(o.HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/srv/example/files', Target: '/files', ReadOnly: false },
      { Type: 'volume', Source: 'example-db', Target: '/var/lib/db', ReadOnly: false },
    ]);
    expect(o.Healthcheck).toEqual({
      Test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/'],
      Interval: 1e9,
      Timeout: 5e9,
      Retries: 3,
      StartPeriod: 0,
    });
    expect(o.HostConfig?.Init).toBe(true);
    expect(o.HostConfig?.Memory).toBe(64 * 1024 * 1024);
    expect(o.HostConfig?.RestartPolicy).toEqual({ Name: 'unless-stopped' });
    expect(o.StopTimeout).toBe(10);
  });

  test("restart 'no' is the engine's empty policy name", () => {
    expect(containerCreateOptions(spec({ restart: 'no' })).HostConfig?.RestartPolicy).toEqual({ Name: '' });
  });
});

describe('ContainerSpec validation', () => {
  const issues = (over: Record<string, unknown>) => {
    const r = ContainerSpec.safeParse({ ...base, ...over });
    return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
  };

  test.each([
    ['shell metacharacters', 'web;rm -rf /'],
    ['command substitution', 'web$(id)'],
    ['uppercase', 'Web'],
    ['a leading hyphen (an option to a CLI)', '-web'],
    ['path traversal', '../web'],
  ])('rejects a container name with %s', (_why, name) => {
    expect(issues({ name })).toEqual(['name']);
  });

  test.each([
    ['no tag (implicit :latest)', 'local/busybox'],
    ['a space', 'local/busybox:1 --privileged'],
    ['a shell substitution', 'local/$(id):1'],
  ])('rejects an image reference with %s', (_why, image) => {
    expect(issues({ image })).toEqual(['image']);
  });

  test('accepts registry, port, path and digest forms of image references', () => {
    for (const image of [
      'registry.example.org:5000/team/php:8.3-fpm',
      'drupal:10.3-php8.3',
      `repo/app@sha256:${'a'.repeat(64)}`,
    ])
      expect(issues({ image })).toEqual([]);
  });

  test('rejects bind sources with .. and relative paths, reserved labels, bad env names, duplicates', () => {
    expect(issues({ mounts: [{ type: 'bind', source: '/srv/../etc', target: '/x' }] })).toEqual([
      'mounts.0.source',
    ]);
    expect(issues({ mounts: [{ type: 'bind', source: 'srv', target: '/x' }] })).toEqual(['mounts.0.source']);
    expect(issues({ labels: { 'qm.spec-hash': 'x' } })).toEqual(['labels.qm.spec-hash']);
    expect(issues({ env: { 'A-B': '1' } })).toEqual(['env.A-B']);
    expect(
      issues({
        ports: [
          { containerPort: 80, hostPort: 8080 },
          { containerPort: 81, hostPort: 8080 },
        ],
      }),
    ).toEqual(['ports.1.hostPort']);
  });
});

describe('activity inputs', () => {
  test('bad input is a non-retryable InvalidInput naming the field, without echoing secrets', () => {
    let err: unknown;
    try {
      parseInput(
        EnsureContainerInput,
        { host: 'host1', spec: { ...base, name: 'x;reboot' } },
        'ensureContainer',
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f.type).toBe('InvalidInput');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/^invalid ensureContainer input: spec\.name: /);
    expect(JSON.stringify([f.message, f.details])).not.toContain('s3cret');
  });

  test('listContainers needs at least one label', () => {
    expect(() => parseInput(ListContainersInput, { host: 'host1', labels: {} }, 'listContainers')).toThrow(
      /labels: give at least one label/,
    );
  });
});

describe('small builders', () => {
  test('labelFilter builds an all-containers query with sorted label=value filters', () => {
    expect(labelFilter({ 'qm.test': '1', 'qm.site': 'a b' })).toEqual({
      all: true,
      filters: JSON.stringify({ label: ['qm.site=a b', 'qm.test=1'] }),
    });
  });

  test('loadError finds an error message in the load reply, and nothing in a good one', () => {
    expect(loadError('{"stream":"Loaded image: local/busybox:1\\n"}\n')).toBeUndefined();
    expect(loadError('{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n')).toBe(
      'unexpected EOF',
    );
  });
});
