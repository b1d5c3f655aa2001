/**
 * Where everything of the proxy lives on a proxy host. It has a tree of its own so that it never
 * touches the machine's /etc/nginx, /var/lib/nginx or /var/log/nginx, and a pid file of its own.
 */
export const PROXY_DIR = '/srv/qm/proxy';
export const NGINX_BIN = '/usr/sbin/nginx';
export const PROXY_PORT = 80;

export const proxyPaths = {
  dir: PROXY_DIR,
  conf: `${PROXY_DIR}/nginx.conf`,
  sites: `${PROXY_DIR}/sites`,
  pages: `${PROXY_DIR}/pages`,
  logs: `${PROXY_DIR}/logs`,
  temp: `${PROXY_DIR}/temp`,
  errorLog: `${PROXY_DIR}/logs/error.log`,
  accessLog: `${PROXY_DIR}/logs/access.log`,
  pid: '/run/qm-proxy.pid',
} as const;

/** The static pages the proxy serves itself, by name (file `pages/<name>.html`). */
export const PAGES = ['maintenance', 'suspended'] as const;
export type PageName = (typeof PAGES)[number];

export function pagePath(page: PageName): string {
  return `${proxyPaths.pages}/${page}.html`;
}

/**
 * A site's two files: its nginx config (included by the base config's `sites/*.conf`) and its
 * route data as JSON (what readSiteRoute returns, without parsing nginx config). The site id is a
 * validated slug, so the path cannot leave the sites directory.
 */
export function sitePaths(siteId: string): { conf: string; json: string } {
  return { conf: `${proxyPaths.sites}/${siteId}.conf`, json: `${proxyPaths.sites}/${siteId}.json` };
}
