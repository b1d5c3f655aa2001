import net from 'node:net';
import { activeBackends, type Route } from '../../schema/route';
import { pagePath, PROXY_PORT, proxyPaths, type PageName } from './layout';

/**
 * Pure renderers of the proxy's nginx configuration: the base nginx.conf of a proxy host and one
 * file per site. Everything interpolated here comes from zod-validated data (slugs, lowercase DNS
 * names, IP literals, integers), so no value can end a directive or open a block; the renderers
 * still refuse anything outside that alphabet, as a second line of defence.
 */

/** How long a client is asked to wait (Retry-After, seconds) on each page the proxy serves itself. */
export const RETRY_AFTER_SECONDS: Record<PageName, number> = { maintenance: 300, suspended: 3600 };

/**
 * The `listen` argument on a host: its own address when the inventory gives an IP literal (a proxy
 * host may have a management address that must not serve sites), else every address.
 */
export function listenAddress(hostAddress: string): string {
  if (net.isIPv4(hostAddress)) return `${hostAddress}:${PROXY_PORT}`;
  if (net.isIPv6(hostAddress)) return `[${hostAddress}]:${PROXY_PORT}`;
  return String(PROXY_PORT);
}

const SAFE_TOKEN = /^[A-Za-z0-9.:[\]_-]+$/;

/** A value about to be pasted into nginx config: refuse anything but the validated alphabet. */
function token(value: string, what: string): string {
  if (!SAFE_TOKEN.test(value))
    throw new TypeError(`unsafe ${what} for nginx config: ${JSON.stringify(value)}`);
  return value;
}

export function upstreamName(siteId: string): string {
  return `qm_site_${token(siteId, 'site id')}`;
}

function backendEndpoint(address: string, port: number): string {
  const host = net.isIPv6(address) ? `[${address}]` : address;
  return token(`${host}:${port}`, 'backend address');
}

/**
 * The base nginx.conf of a proxy host: its own pid file, logs and temp directories, a default
 * server that answers 404 for any Host no site claims, and an include of every site's file.
 */
export function renderBaseConfig(opts: { listen: string }): string {
  const listen = token(opts.listen, 'listen address');
  const p = proxyPaths;
  return `# Managed by Quartermaster (ensureProxy rewrites this file): do not edit by hand.
user www-data;
worker_processes auto;
# After a reload, old workers finish the requests they hold for at most this long (long CiviCRM
# imports included), then exit: reloads never cut a request short before that.
worker_shutdown_timeout 300s;
pid ${p.pid};
error_log ${p.errorLog} warn;

events {
    worker_connections 4096;
}

http {
    types {
        text/html html;
    }
    default_type application/octet-stream;
    server_tokens off;

    # The query string is left out of the log: CiviCRM checksums and one-time tokens travel there.
    log_format qm '$remote_addr [$time_iso8601] $host "$request_method $uri" $status $body_bytes_sent '
                  '$request_time upstream=$upstream_addr status=$upstream_status time=$upstream_response_time';
    access_log ${p.accessLog} qm;

    client_body_temp_path ${p.temp}/client_body;
    proxy_temp_path ${p.temp}/proxy;
    fastcgi_temp_path ${p.temp}/fastcgi;
    uwsgi_temp_path ${p.temp}/uwsgi;
    scgi_temp_path ${p.temp}/scgi;

    client_max_body_size 256m;
    keepalive_timeout 65s;
    sendfile on;

    # Any Host that no site claims (and requests without one).
    server {
        listen ${listen} default_server;
        server_name _;
        return 404;
    }

    include ${p.sites}/*.conf;
}
`;
}

/** Why a site serves one of the proxy's own pages instead of its backends (or null: it is proxied). */
export function servedPage(route: Route): { page: PageName; state: string } | null {
  if (route.mode === 'suspended') return { page: 'suspended', state: 'suspended' };
  if (route.mode === 'maintenance') return { page: 'maintenance', state: 'maintenance' };
  if (activeBackends(route).length === 0) return { page: 'maintenance', state: 'no-active-backend' };
  return null;
}

/**
 * A site's nginx config.
 *
 * active: an upstream of every backend, with keepalive connections; a drained backend is marked
 * `down`, so a reload sends it no new request while requests in flight on it finish in the old
 * workers. A connection error, a timeout, a 502 or a 503 from one backend moves the request to the
 * next one (for POST and other non-idempotent methods only when the request never reached the
 * backend, so a form is never submitted twice), so one failing backend is invisible to users
 * while another is healthy.
 *
 * suspended and maintenance: the proxy's own page with 503 and Retry-After, and Cache-Control:
 * no-store. 503 rather than 402 for a suspension: it is reversible, 503 tells crawlers to come back
 * instead of dropping the site's pages, shared caches never keep it (so nobody sees a stale
 * "suspended" page once the site is reinstated), and 402 is still "reserved for future use".
 * The X-QM-Site-State header tells the two pages (and "no active backend") apart for probes.
 *
 * A site whose backends are all drained (or that has none yet) serves the maintenance page, never
 * a 502.
 */
export function renderSiteConfig(route: Route, opts: { listen: string }): string {
  const listen = token(opts.listen, 'listen address');
  const site = token(route.siteId, 'site id');
  const names = route.domains.map((d) => token(d, 'domain')).join(' ');
  const head = `# Managed by Quartermaster (putSiteRoute rewrites this file): site ${site}, mode ${route.mode}.\n`;
  const page = servedPage(route);
  if (page) {
    const uri = `/__qm/${page.page}.html`;
    return `${head}server {
    listen ${listen};
    server_name ${names};

    location / {
        return 503;
    }
    error_page 503 ${uri};
    location = ${uri} {
        internal;
        alias ${pagePath(page.page)};
        charset utf-8;
        add_header Retry-After ${RETRY_AFTER_SECONDS[page.page]} always;
        add_header Cache-Control "no-store" always;
        add_header X-QM-Site-State ${page.state} always;
    }
}
`;
  }
  const upstream = upstreamName(site);
  const servers = route.backends
    .map((b) => {
      const endpoint = backendEndpoint(b.address, b.port);
      const host = token(b.host, 'backend host');
      return b.state === 'active'
        ? `    server ${endpoint} max_fails=1 fail_timeout=10s; # ${host}\n`
        : `    server ${endpoint} down; # ${host}, drained\n`;
    })
    .join('');
  return `${head}upstream ${upstream} {
${servers}    keepalive 16;
    keepalive_timeout 60s;
}

server {
    listen ${listen};
    server_name ${names};

    location / {
        proxy_pass http://${upstream};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 5s;
        proxy_send_timeout 300s;
        proxy_read_timeout 300s;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 3;
        proxy_next_upstream_timeout 15s;
    }
}
`;
}

/** The route as stored next to the site's config: canonical JSON, so equal routes are equal files. */
export function renderRouteJson(route: Route): string {
  const canonical: Route = {
    siteId: route.siteId,
    domains: route.domains,
    backends: route.backends.map((b) => ({ host: b.host, address: b.address, port: b.port, state: b.state })),
    mode: route.mode,
  };
  return JSON.stringify(canonical, null, 2) + '\n';
}

function pageHtml(title: string, message: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:15vh auto;padding:0 1rem;color:#222}</style>
</head>
<body><h1>${title}</h1><p>${message}</p></body>
</html>
`;
}

/** The static pages, the same for every site (they name none: nothing site-specific to leak or escape). */
export const PAGE_HTML: Record<PageName, string> = {
  maintenance: pageHtml(
    'Down for maintenance',
    'This site is being updated and will be back shortly. Please try again in a few minutes.',
  ),
  suspended: pageHtml(
    'Site suspended',
    'This site is currently suspended. If you are its owner, please contact your hosting provider.',
  ),
};
