import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Route } from '../../schema/route';
import {
  APPLY_SCRIPT,
  IN_FLIGHT_SCRIPT,
  ApplyExit,
  applyArgv,
  EXIT_ABSENT,
  existingArgv,
  candidatePath,
  mkdirsArgv,
  readFileArgv,
  STATUS_SCRIPT,
  STOP_SCRIPT,
  stopArgv,
  unfinishedMarkers,
  writeThenApplyArgv,
} from '../../activities/proxy/commands';
import {
  listenAddress,
  renderBaseConfig,
  renderRouteJson,
  renderSiteConfig,
  upstreamName,
} from '../../activities/proxy/nginxConfig';

const listen = '10.0.0.1:80';
const base: Route = Route.parse({
  siteId: 'acme',
  domains: ['acme.example.org', 'www.acme.example.org'],
  backends: [
    { host: 'host2', address: '10.0.0.2', port: 8081, state: 'active' },
    { host: 'host3', address: '10.0.0.3', port: 8081, state: 'active' },
  ],
  mode: 'active',
});
const lines = (text: string) => text.split('\n').map((l) => l.trim());

describe('renderSiteConfig, active', () => {
  const conf = renderSiteConfig(base, { listen });

  test('an upstream of every backend, with keepalive', () => {
    expect(conf).toContain('upstream qm_site_acme {');
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        'server 10.0.0.2:8081 max_fails=1 fail_timeout=10s; # host2',
        'server 10.0.0.3:8081 max_fails=1 fail_timeout=10s; # host3',
        'keepalive 16;',
      ]),
    );
  });

  test('serves the domains on the host address and proxies with keepalive-safe headers', () => {
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        'listen 10.0.0.1:80;',
        'server_name acme.example.org www.acme.example.org;',
        'proxy_pass http://qm_site_acme;',
        'proxy_http_version 1.1;',
        'proxy_set_header Connection "";',
        'proxy_set_header Host $host;',
      ]),
    );
  });

  test('moves a request to the next backend on error, timeout, 502 and 503 (not on POST once sent)', () => {
    expect(lines(conf)).toContain('proxy_next_upstream error timeout http_502 http_503;');
    expect(conf).not.toContain('non_idempotent');
  });

  test('is never a default server and has no page of its own', () => {
    expect(conf).not.toContain('default_server');
    expect(conf).not.toContain('return 503');
  });
});

test('a drained backend is marked down, the other stays', () => {
  const conf = renderSiteConfig(
    { ...base, backends: [{ ...base.backends[0]!, state: 'drained' }, base.backends[1]!] },
    { listen },
  );
  expect(lines(conf)).toContain('server 10.0.0.2:8081 down; # host2, drained');
  expect(lines(conf)).toContain('server 10.0.0.3:8081 max_fails=1 fail_timeout=10s; # host3');
  expect(conf).toContain('proxy_pass http://qm_site_acme;');
});

test('an IPv6 backend is bracketed', () => {
  const conf = renderSiteConfig(
    { ...base, backends: [{ host: 'host2', address: 'fd00::2', port: 8081, state: 'active' }] },
    { listen },
  );
  expect(conf).toContain('server [fd00::2]:8081 max_fails=1');
});

describe.each([
  ['suspended', { mode: 'suspended' as const }, 'suspended', 'suspended', 3600],
  ['maintenance', { mode: 'maintenance' as const }, 'maintenance', 'maintenance', 300],
  [
    'every backend drained',
    { backends: base.backends.map((b) => ({ ...b, state: 'drained' as const })) },
    'maintenance',
    'no-active-backend',
    300,
  ],
  ['no backends', { backends: [] }, 'maintenance', 'no-active-backend', 300],
])('%s', (_name, over, page, state, retryAfter) => {
  const conf = renderSiteConfig({ ...base, ...over }, { listen });

  test(`serves the ${page} page with 503 and Retry-After ${retryAfter}, never the backends`, () => {
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        'return 503;',
        `error_page 503 /__qm/${page}.html;`,
        `location = /__qm/${page}.html {`,
        'internal;',
        `alias /srv/qm/proxy/pages/${page}.html;`,
        `add_header Retry-After ${retryAfter} always;`,
        'add_header Cache-Control "no-store" always;',
        `add_header X-QM-Site-State ${state} always;`,
        'server_name acme.example.org www.acme.example.org;',
      ]),
    );
    expect(conf).not.toContain('proxy_pass');
    expect(conf).not.toContain('upstream');
  });
});

test('the renderer refuses an unsafe value even if validation was bypassed', () => {
  const hostile = { ...base, domains: ['evil.org; include /etc/shadow'] } as Route;
  expect(() => renderSiteConfig(hostile, { listen })).toThrow(/unsafe domain/);
  expect(() => renderSiteConfig({ ...base, siteId: 'a}b' }, { listen })).toThrow(/unsafe site id/);
  expect(() => upstreamName('x y')).toThrow();
});

test('listenAddress: the IP itself (v6 bracketed), any address for a DNS name', () => {
  expect(listenAddress('10.77.4.11')).toBe('10.77.4.11:80');
  expect(listenAddress('fd00::1')).toBe('[fd00::1]:80');
  expect(listenAddress('proxy.internal.example')).toBe('80');
});

describe('renderBaseConfig', () => {
  const conf = renderBaseConfig({ listen });
  test('keeps everything under /srv/qm/proxy with its own pid file', () => {
    expect(lines(conf)).toEqual(
      expect.arrayContaining([
        'pid /run/qm-proxy.pid;',
        'error_log /srv/qm/proxy/logs/error.log warn;',
        'client_body_temp_path /srv/qm/proxy/temp/client_body;',
        'proxy_temp_path /srv/qm/proxy/temp/proxy;',
        'include /srv/qm/proxy/sites/*.conf;',
      ]),
    );
    expect(conf).not.toMatch(/\/etc\/nginx|\/var\/lib\/nginx|\/var\/log\/nginx/);
  });
  test('has a default server answering 404 for unknown hosts', () => {
    expect(lines(conf)).toEqual(
      expect.arrayContaining(['listen 10.0.0.1:80 default_server;', 'server_name _;', 'return 404;']),
    );
  });
  test('does not log query strings', () => {
    expect(conf).not.toContain('$request ');
    expect(conf).not.toContain('$args');
  });
});

test('renderRouteJson is canonical: the same route in any key order gives the same bytes', () => {
  const shuffled = Route.parse({
    mode: 'active',
    backends: base.backends.map((b) => ({ state: b.state, port: b.port, address: b.address, host: b.host })),
    domains: base.domains,
    siteId: 'acme',
  });
  expect(renderRouteJson(shuffled)).toBe(renderRouteJson(base));
  expect(Route.parse(JSON.parse(renderRouteJson(base)))).toEqual(base);
});

describe('commands', () => {
  test('the scripts are valid POSIX sh', () => {
    for (const script of [APPLY_SCRIPT, STOP_SCRIPT, STATUS_SCRIPT, IN_FLIGHT_SCRIPT])
      execFileSync('sh', ['-n', '-c', script]);
  });

  test('every variable part is a positional argument, never spliced into the script', () => {
    const argv = applyArgv({
      start: false,
      guard: { path: '/srv/qm/proxy/sites/a.json', sha256: 'abc' },
      files: [
        { candidate: '/srv/qm/proxy/sites/a.conf.qm-cand-abcdef', live: '/srv/qm/proxy/sites/a.conf' },
        { candidate: null, live: '/srv/qm/proxy/sites/a.json' },
      ],
    });
    expect(argv.slice(0, 3)).toEqual(['sh', '-c', APPLY_SCRIPT]);
    expect(argv.slice(3)).toEqual([
      'qm-proxy-apply',
      '/srv/qm/proxy',
      '/usr/sbin/nginx',
      '/run/qm-proxy.pid',
      'no',
      '/srv/qm/proxy/sites/a.json',
      'abc',
      'old',
      '/srv/qm/proxy/sites/a.conf.qm-cand-abcdef',
      '/srv/qm/proxy/sites/a.conf',
      '-',
      '/srv/qm/proxy/sites/a.json',
    ]);
    expect(() => applyArgv({ start: true, files: [] })).toThrow();
  });

  test('write-then-apply: each candidate gets exactly its bytes of stdin, then the apply script runs with its arguments', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-wta-'));
    try {
      const a = `${dir}/a.conf.qm-cand-abcdef`;
      const c = `${dir}/c.json.qm-cand-abcdef`;
      const contents = [Buffer.from('héllo "$1" \'q\'\n'), Buffer.alloc(0), Buffer.from('x'.repeat(70_000))];
      const files = [
        { candidate: a, live: `${dir}/a.conf` },
        { candidate: null, live: `${dir}/b.conf` },
        { candidate: `${dir}/e.conf.qm-cand-abcdef`, live: `${dir}/e.conf` },
        { candidate: c, live: `${dir}/c.json` },
      ];
      const argv = writeThenApplyArgv(
        { start: false, files },
        contents.map((x) => x.length),
      );
      expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
      // the files travel on stdin: the command holds only their paths, never in its script
      expect(argv[2]).not.toContain(a);
      expect(argv.join(' ')).not.toContain('héllo');
      const at = argv.indexOf(APPLY_SCRIPT);
      expect(at).toBeGreaterThan(3);
      expect(argv.slice(at + 1)).toEqual(applyArgv({ start: false, files }).slice(3));
      // the apply script replaced by one that prints its arguments
      const test = [...argv.slice(1, at), 'printf "%s\\n" "$0" "$@"', ...argv.slice(at + 1)];
      const r = spawnSync('sh', test, { input: Buffer.concat(contents) });
      expect(r.status).toBe(0);
      expect(r.stdout.toString().split('\n')[0]).toBe('qm-proxy-apply');
      expect(fs.readFileSync(a)).toEqual(contents[0]);
      expect(fs.readFileSync(`${dir}/e.conf.qm-cand-abcdef`)).toEqual(contents[1]);
      expect(fs.readFileSync(c)).toEqual(contents[2]);
      // stdin shorter than the lengths: a failure, not a truncated file applied
      const short = spawnSync('sh', test, { input: contents[0] });
      expect(short.status).toBe(1);
      // no such directory: the proxy is not set up
      const missing = writeThenApplyArgv(
        { start: false, files: [{ candidate: `${dir}/nope/x.qm-cand-abcdef`, live: `${dir}/nope/x` }] },
        [1],
      );
      expect(spawnSync('sh', missing.slice(1), { input: 'x' }).status).toBe(ApplyExit.NotSetUp);
      expect(() => writeThenApplyArgv({ start: false, files }, [1])).toThrow();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('readFile prints a file, and tells absence apart from failure', () => {
    const argv = readFileArgv('/nonexistent/qm-proxy-unit');
    expect(argv.slice(3)).toEqual(['qm-read', '/nonexistent/qm-proxy-unit']);
    expect(spawnSync(argv[0]!, argv.slice(1)).status).toBe(EXIT_ABSENT);
    const here = readFileArgv(__filename);
    expect(execFileSync(here[0]!, here.slice(1), { encoding: 'utf8' })).toBe(
      fs.readFileSync(__filename, 'utf8'),
    );
  });

  test('unfinished markers name the backups, new-file markers and owed reload; existing lists only what exists', () => {
    expect(unfinishedMarkers(['/s/a.conf'])).toEqual([
      '/srv/qm/proxy/.qm-reload-owed',
      '/s/a.conf.qm-prev',
      '/s/a.conf.qm-new',
    ]);
    expect(APPLY_SCRIPT).toContain('owed="$d/.qm-reload-owed"');
    expect(APPLY_SCRIPT).toContain('"$2.qm-prev"');
    expect(APPLY_SCRIPT).toContain('"$2.qm-new"');
    const argv = existingArgv([__filename, '/nonexistent/x', 'a file with spaces; rm -rf /']);
    expect(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })).toBe(`${__filename}\n`);
  });

  test('a candidate never matches sites/*.conf, and its nonce is checked', () => {
    expect(candidatePath('/srv/qm/proxy/sites/a.conf', 'abc123')).toBe(
      '/srv/qm/proxy/sites/a.conf.qm-cand-abc123',
    );
    expect(candidatePath('/srv/qm/proxy/sites/a.conf', 'abc123').endsWith('.conf')).toBe(false);
    expect(() => candidatePath('/x', '../../etc')).toThrow();
  });

  test('mkdirs and stop', () => {
    expect(mkdirsArgv()).toEqual([
      'mkdir',
      '-p',
      '-m',
      '0755',
      '/srv/qm/proxy',
      '/srv/qm/proxy/sites',
      '/srv/qm/proxy/pages',
      '/srv/qm/proxy/logs',
      '/srv/qm/proxy/temp',
    ]);
    expect(stopArgv(5).slice(3)).toEqual(['qm-proxy-stop', '/run/qm-proxy.pid', '5']);
    expect(() => stopArgv(-1)).toThrow();
  });
});
