import {
  decideBatch,
  planBatches,
  selectHosts,
  type RouteView,
  type SiteOnHost,
} from '../../workflows/patchRoll/plan';

/** The patch roll's site-aware planning: pure rules, checked exhaustively where it is cheap. */

const inventory: { name: string; roles: string[]; labels: Record<string, string> }[] = [
  { name: 'proxy1', roles: ['proxy'], labels: {} },
  { name: 'app1', roles: ['app', 'cache'], labels: { zone: 'a' } },
  { name: 'app2', roles: ['app'], labels: { zone: 'b' } },
  { name: 'app3', roles: ['app'], labels: { zone: 'a', canary: 'yes' } },
  { name: 'db1', roles: ['db'], labels: { zone: 'a' } },
];

describe('selectHosts', () => {
  test('every given criterion must match, in inventory order', () => {
    expect(selectHosts(inventory, { roles: ['app'] }).hosts).toEqual(['app1', 'app2', 'app3']);
    expect(selectHosts(inventory, { roles: ['app'], labels: { zone: 'a' } }).hosts).toEqual(['app1', 'app3']);
    expect(selectHosts(inventory, { names: ['app3', 'app1'] }).hosts).toEqual(['app1', 'app3']);
    expect(selectHosts(inventory, { names: ['app1', 'db1'], roles: ['db'] }).hosts).toEqual(['db1']);
    expect(selectHosts(inventory, { labels: { zone: 'c' } }).hosts).toEqual([]);
  });
  test('an unknown name is reported, never silently dropped', () => {
    expect(selectHosts(inventory, { names: ['app1', 'app9'] }).unknown).toEqual(['app9']);
  });
});

/** Every site with k >= 2 app servers keeps at least one of them outside every batch. */
function assertSafe(batches: string[][], sites: Record<string, string[]>) {
  for (const batch of batches)
    for (const [siteId, appHosts] of Object.entries(sites)) {
      const k = new Set(appHosts).size;
      if (k < 2) continue;
      const out = appHosts.filter((h) => batch.includes(h)).length;
      if (out >= k) throw new Error(`batch ${batch.join(',')} takes every app server of ${siteId} out`);
    }
}

describe('planBatches', () => {
  const hosts = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];

  test('no sites: plain batches of batchSize, in order', () => {
    expect(planBatches(hosts, {}, 4, false)).toEqual([
      ['h1', 'h2', 'h3', 'h4'],
      ['h5', 'h6'],
    ]);
    expect(planBatches(hosts, {}, 100, false)).toEqual([hosts]);
  });

  test('canary: the first host alone, then batches of batchSize', () => {
    expect(planBatches(hosts, {}, 2, true)).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5'], ['h6']]);
  });

  test('two app servers of one site never share a batch, whatever the batch size', () => {
    const sites = { a: ['h1', 'h2'], b: ['h3', 'h4'], single: ['h5'] };
    const batches = planBatches(hosts, sites, 100, false);
    assertSafe(batches, sites);
    expect(batches).toEqual([
      ['h1', 'h3', 'h5', 'h6'],
      ['h2', 'h4'],
    ]);
  });

  test('a site with three app servers may have two out at once, never three', () => {
    const sites = { big: ['h1', 'h2', 'h3'] };
    const batches = planBatches(['h1', 'h2', 'h3'], sites, 3, false);
    expect(batches).toEqual([['h1', 'h2'], ['h3']]);
  });

  test('app servers outside the roll count as serving', () => {
    // h9 is not rolled: the site keeps h9 while h1 and h2 are out together
    expect(planBatches(['h1', 'h2'], { s: ['h1', 'h2', 'h9'] }, 2, false)).toEqual([['h1', 'h2']]);
  });

  test('random fleets: every host exactly once, no batch over size, every multi-server site keeps one', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let run = 0; run < 500; run++) {
      const n = 1 + Math.floor(rand() * 12);
      const fleet = Array.from({ length: n }, (_, i) => `h${i}`);
      const sites: Record<string, string[]> = {};
      for (let s = 0; s < Math.floor(rand() * 15); s++) {
        const k = 1 + Math.floor(rand() * Math.min(4, n));
        sites[`s${s}`] = [...fleet].sort(() => rand() - 0.5).slice(0, k);
      }
      const size = 1 + Math.floor(rand() * n);
      const canary = rand() < 0.5;
      const batches = planBatches(fleet, sites, size, canary);
      expect(batches.flat().sort()).toEqual([...fleet].sort());
      for (const b of batches) expect(b.length).toBeLessThanOrEqual(size);
      if (canary) expect(batches[0]).toEqual(['h0']);
      assertSafe(batches, sites);
    }
  });
});

describe('decideBatch', () => {
  const route = (
    proxyHost: string,
    backends: [string, 'active' | 'drained'][],
    mode: RouteView['mode'] = 'active',
  ) => ({
    proxyHost,
    mode,
    backends: backends.map(([host, state]) => ({ host, state })),
  });
  const site = (siteId: string, appHosts: string[], routes: RouteView[]): SiteOnHost => ({
    siteId,
    appHosts,
    routes,
  });

  test('drain where another app server serves, maintenance page where the host is the only one', () => {
    const d = decideBatch(['h1'], {
      h1: [
        site(
          'multi',
          ['h1', 'h2'],
          [
            route('p1', [
              ['h1', 'active'],
              ['h2', 'active'],
            ]),
          ],
        ),
        site('single', ['h1'], [route('p1', [['h1', 'active']])]),
        site('cacheonly', ['h2'], [route('p1', [['h2', 'active']])]),
        site(
          'suspended',
          ['h1', 'h2'],
          [
            route(
              'p1',
              [
                ['h1', 'active'],
                ['h2', 'active'],
              ],
              'suspended',
            ),
          ],
        ),
        site('norecord', [], []),
      ],
    });
    expect(d).toEqual([
      {
        host: 'h1',
        actions: [
          { siteId: 'multi', action: 'drain' },
          { siteId: 'single', action: 'maintenance' },
          { siteId: 'cacheonly', action: 'none' },
          { siteId: 'suspended', action: 'none' },
          { siteId: 'norecord', action: 'none' },
        ],
      },
    ]);
  });

  test('a host whose site has its other app server drained already is held back, untouched', () => {
    const [d] = decideBatch(['h1'], {
      h1: [
        site(
          'multi',
          ['h1', 'h2'],
          [
            route('p1', [
              ['h1', 'active'],
              ['h2', 'drained'],
            ]),
          ],
        ),
      ],
    });
    expect(d!.heldBack).toMatch(/site multi with no active app server on p1 \(h2 drained\)/);
    expect(d!.actions).toEqual([]);
  });

  test('within a batch, the second host that would empty a site is held back; one per proxy counts', () => {
    const both = [
      route('p1', [
        ['h1', 'active'],
        ['h2', 'active'],
      ]),
      route('p2', [
        ['h1', 'active'],
        ['h2', 'active'],
      ]),
    ];
    const d = decideBatch(['h1', 'h2'], {
      h1: [site('s', ['h1', 'h2'], both)],
      h2: [site('s', ['h1', 'h2'], both)],
    });
    expect(d[0]).toEqual({ host: 'h1', actions: [{ siteId: 's', action: 'drain' }] });
    expect(d[1]!.heldBack).toMatch(/site s/);
  });
});
