import { ApplicationFailure } from '@temporalio/common';
import { decidePlacement, type PlacementFacts } from '../../activities/site/placement';
import type { Host } from '../../schema/inventory';

function host(name: string, roles: Host['roles']): Host {
  return {
    name,
    address: `10.0.0.${name.replace(/\D/g, '')}`,
    port: 22,
    user: 'root',
    roles,
    labels: {},
    hostKeys: [],
    dockerSocket: '/run/docker.sock',
  };
}

const HOSTS = [
  host('h1', ['proxy', 'db', 'storage']),
  host('h2', ['app', 'cache', 'db']),
  host('h3', ['app', 'cache', 'db']),
  host('h4', ['app']),
  host('h5', ['proxy', 'storage']),
];

function facts(over: Partial<PlacementFacts> = {}): PlacementFacts {
  return {
    siteId: 'acme',
    database: 'site_acme',
    appServers: 2,
    hosts: HOSTS,
    siteContainers: {},
    usedPorts: {},
    existing: [],
    siteDatabases: {},
    storageWithFiles: [],
    ...over,
  };
}

function failureOf(fn: () => unknown): ApplicationFailure {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('did not throw');
}

describe('decidePlacement: a new site', () => {
  test('least loaded app hosts (ties by name), the lowest free port, every proxy, the first storage', () => {
    const p = decidePlacement(facts({ siteContainers: { h2: 5, h3: 1, h4: 1 } }));
    expect(p).toEqual({
      appHosts: ['h3', 'h4'],
      dbHost: 'h1',
      storageHost: 'h1',
      proxyHosts: ['h1', 'h5'],
      cacheHost: 'h3',
      port: 20000,
    });
  });

  test('the cache goes to the first chosen app host with the cache role, else the first app host', () => {
    expect(decidePlacement(facts({ siteContainers: { h2: 9, h3: 9 } })).cacheHost).toBe('h2'); // h2,h4
    expect(decidePlacement(facts({ siteContainers: { h2: 9, h3: 9 }, appServers: 1 })).cacheHost).toBe('h4');
  });

  test('the port is free on every chosen host, its cache port (+10000) too', () => {
    const p = decidePlacement(
      facts({ usedPorts: { h2: [20000, 20001], h3: [20002, 30003], h4: [20004] }, appServers: 2 }),
    );
    expect(p.appHosts).toEqual(['h2', 'h3']);
    expect(p.port).toBe(20004);
  });

  test('the DB host with the fewest site databases, ties by name', () => {
    expect(
      decidePlacement(facts({ siteDatabases: { h1: ['site_a', 'site_b'], h2: ['site_c'] } })).dbHost,
    ).toBe('h3');
    expect(decidePlacement(facts({ siteDatabases: { h1: ['site_a'], h2: [], h3: [] } })).dbHost).toBe('h2');
  });

  test('not enough app hosts is InvalidInput saying how many there are', () => {
    const f = failureOf(() => decidePlacement(facts({ appServers: 4 })));
    expect(f.type).toBe('InvalidInput');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe('site acme needs 4 app servers, but the fleet has 3 app host(s) (h2, h3, h4)');
  });

  test('no free port is a Conflict', () => {
    const all = Array.from({ length: 10000 }, (_, i) => 20000 + i);
    const f = failureOf(() =>
      decidePlacement(facts({ usedPorts: { h2: all }, siteContainers: { h3: 1, h4: 1 } })),
    );
    expect(f.type).toBe('Conflict');
  });

  test('a fleet without db, storage or proxy hosts is InvalidInput', () => {
    const apps = [host('h2', ['app']), host('h3', ['app'])];
    expect(failureOf(() => decidePlacement(facts({ hosts: apps }))).message).toBe('the fleet has no db host');
    expect(failureOf(() => decidePlacement(facts({ hosts: [...apps, host('h1', ['db'])] }))).message).toBe(
      'the fleet has no storage host',
    );
  });
});

describe('decidePlacement: a site that exists already (retry, re-run of a half-done provision)', () => {
  test('keeps its app hosts and port even when others are now less loaded', () => {
    const p = decidePlacement(
      facts({
        siteContainers: { h2: 50, h3: 50, h4: 0 },
        existing: [
          { host: 'h3', role: 'app', hostPorts: [20017] },
          { host: 'h2', role: 'app', hostPorts: [20017] },
          { host: 'h2', role: 'cache', hostPorts: [30017] },
        ],
        usedPorts: { h2: [20000], h3: [20000] },
      }),
    );
    expect(p.appHosts).toEqual(['h2', 'h3']);
    expect(p.port).toBe(20017);
    expect(p.cacheHost).toBe('h2');
  });

  test('a half-done provision (one app host so far) is completed on a host where its port is free', () => {
    const p = decidePlacement(
      facts({
        siteContainers: { h2: 1, h3: 0, h4: 5 },
        existing: [{ host: 'h2', role: 'app', hostPorts: [20005] }],
        usedPorts: { h3: [20005] },
      }),
    );
    expect(p.appHosts).toEqual(['h2', 'h4']); // h3 is less loaded but has 20005 taken
    expect(p.port).toBe(20005);
  });

  test('the cache stays where it runs; the database and files where they are', () => {
    const p = decidePlacement(
      facts({
        existing: [
          { host: 'h3', role: 'cache', hostPorts: [30000] },
          { host: 'h3', role: 'app', hostPorts: [20000] },
          { host: 'h2', role: 'app', hostPorts: [20000] },
        ],
        siteDatabases: { h1: [], h2: ['site_x', 'site_y', 'site_acme'] },
        storageWithFiles: ['h5'],
      }),
    );
    expect(p.cacheHost).toBe('h3');
    expect(p.dbHost).toBe('h2');
    expect(p.storageHost).toBe('h5');
  });

  test('its database on two DB hosts is a Conflict', () => {
    const f = failureOf(() =>
      decidePlacement(facts({ siteDatabases: { h1: ['site_acme'], h2: ['site_acme'] } })),
    );
    expect(f.type).toBe('Conflict');
    expect(f.message).toContain('h1, h2');
  });
});
