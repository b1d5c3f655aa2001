import { z } from 'zod';
import { hostName, slug } from './common';

/**
 * A site's route through the proxy: which domains it answers, which app backends serve it, and
 * whether it serves at all. Shared by the proxy activities (which render it into nginx config and
 * store it on the proxy host) and by workflows (deploy, patch roll) that change it.
 */

/**
 * A domain the proxy answers for: a lowercase ASCII DNS name with at least two labels (IDNs in
 * their punycode `xn--` form). Every character outside [a-z0-9.-] is refused, so nothing that can
 * end or open an nginx directive (`;`, `{`, `}`, quotes, `$`, whitespace, newlines) or a unicode
 * look-alike ever reaches a server_name line. No wildcards, no trailing dot, no IP literals.
 */
export const DomainName = z
  .string()
  .min(1, 'a domain cannot be empty')
  .max(253, 'a domain is at most 253 characters')
  .regex(/^[a-z0-9.-]+$/, 'a domain is lowercase ASCII letters, digits, dots and hyphens only')
  .regex(
    /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'a domain is dot-separated labels of 1-63 characters, no label starting or ending with a hyphen, ' +
      'and a top-level label starting with a letter',
  );
export type DomainName = z.infer<typeof DomainName>;

/** Where a backend listens: an IP literal, or a DNS name (resolved by nginx when it loads the config). */
export const BackendAddress = z.union([z.ipv4(), z.ipv6(), DomainName]);

/**
 * `active` backends take new requests; a `drained` one takes none (requests already in flight on
 * it finish), which is how a patch roll or a deploy takes a host out of rotation.
 */
export const BackendState = z.enum(['active', 'drained']);
export type BackendState = z.infer<typeof BackendState>;

export const Backend = z.strictObject({
  /** The inventory host the backend runs on: what drain/readmit address it by. */
  host: hostName,
  address: BackendAddress,
  port: z.number().int().min(1).max(65535),
  state: BackendState,
});
export type Backend = z.infer<typeof Backend>;

/**
 * `active`: proxied to the active backends. `maintenance`: a maintenance page with 503 and
 * Retry-After (deploys, restores). `suspended`: a "suspended" page, also 503 (see nginxConfig.ts).
 */
export const SiteMode = z.enum(['active', 'suspended', 'maintenance']);
export type SiteMode = z.infer<typeof SiteMode>;

export const SiteId = slug('site id');

export const Route = z
  .strictObject({
    siteId: SiteId,
    domains: z.array(DomainName).min(1, 'a route needs at least one domain').max(100),
    /** May be empty (a site not deployed yet): it then serves the maintenance page. */
    backends: z.array(Backend).max(32),
    mode: SiteMode,
  })
  .superRefine((route, ctx) => {
    const domains = new Set<string>();
    route.domains.forEach((d, i) => {
      if (domains.has(d))
        ctx.addIssue({ code: 'custom', path: ['domains', i], message: `duplicate domain ${d}` });
      domains.add(d);
    });
    const endpoints = new Set<string>();
    route.backends.forEach((b, i) => {
      const key = `${b.address}:${b.port}`;
      if (endpoints.has(key))
        ctx.addIssue({ code: 'custom', path: ['backends', i], message: `duplicate backend ${key}` });
      endpoints.add(key);
    });
  });
export type Route = z.infer<typeof Route>;

/** The backends that take new requests. */
export function activeBackends(route: Route): Backend[] {
  return route.backends.filter((b) => b.state === 'active');
}

/**
 * The route with the backends on `backendHost` (only the one on `port`, if given) set to `state`.
 * Pure, so a workflow can compute the same thing the activity stores.
 */
export function withBackendState(
  route: Route,
  backendHost: string,
  state: BackendState,
  port?: number,
): Route {
  return {
    ...route,
    backends: route.backends.map((b) =>
      b.host === backendHost && (port === undefined || b.port === port) ? { ...b, state } : b,
    ),
  };
}

/**
 * What a health probe through the proxy expects, shared by every activity that probes (a site's
 * health, a backend's, a release's standby): the URL path, the status, optionally text in the body.
 * Each adds its own timeout (how long a probe may wait differs by what it checks).
 */
export const HealthExpectation = {
  path: z
    .string()
    .max(2048)
    .regex(/^\/[\x21-\x7e]*$/, 'a path starts with / and is printable ASCII without spaces'),
  expectStatus: z.number().int().min(100).max(599),
  expectText: z.string().min(1).max(200).optional(),
};
