import { z } from 'zod';
import { hostName } from '../../schema/common';
import { BackendState, DomainName, Route, SiteId } from '../../schema/route';
import { hostWithRole } from '../input';
import type { Fleet } from '../fleet';

/** The inputs of the proxy activities, checked at the activity edge before anything runs. */

export const EnsureProxyInput = z.strictObject({ host: hostName });
export type EnsureProxyInput = z.input<typeof EnsureProxyInput>;

/**
 * Once the change is in place, wait for the requests in flight on the old configuration (every
 * nginx worker told to shut down has exited), this many seconds at most, in the same command.
 */
const waitInFlightSeconds = z.number().int().min(0).max(3600).optional();

export const PutSiteRouteInput = z.strictObject({ host: hostName, route: Route, waitInFlightSeconds });
export type PutSiteRouteInput = z.input<typeof PutSiteRouteInput>;

export const SiteOnProxyInput = z.strictObject({ host: hostName, siteId: SiteId });
export type SiteOnProxyInput = z.input<typeof SiteOnProxyInput>;

export const ProxyStatusInput = z.strictObject({ host: hostName, siteIds: z.array(SiteId).max(5000) });
export type ProxyStatusInput = z.input<typeof ProxyStatusInput>;

export const SetBackendStateInput = z.strictObject({
  host: hostName,
  siteId: SiteId,
  backendHost: hostName,
  /** Only the backend on this port (a host may run two during a deploy); all of the host's if absent. */
  backendPort: z.number().int().min(1).max(65535).optional(),
  state: BackendState,
  /**
   * The route as the caller last read it under the site's lock: the first attempt takes it as
   * the stored one (guarded by its hash, so a route changed since is re-read), saving a read.
   */
  expected: Route.optional(),
  waitInFlightSeconds,
});
export type SetBackendStateInput = z.input<typeof SetBackendStateInput>;

export const WaitForInFlightInput = z.strictObject({
  host: hostName,
  timeoutSeconds: z.number().int().min(0).max(3600),
});
export type WaitForInFlightInput = z.input<typeof WaitForInFlightInput>;

export const StopProxyInput = z.strictObject({
  host: hostName,
  graceSeconds: z.number().int().min(0).max(600).default(30),
});
export type StopProxyInput = z.input<typeof StopProxyInput>;

export const ProbeSiteInput = z.strictObject({
  proxyHost: hostName,
  domain: DomainName,
  /** An origin-form request target: printable ASCII, no spaces (percent-encode anything else). */
  path: z
    .string()
    .max(2048)
    .regex(/^\/[\x21-\x7e]*$/, 'a path starts with / and is printable ASCII without spaces')
    .default('/'),
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
});
export type ProbeSiteInput = z.input<typeof ProbeSiteInput>;

/** The shared edge check (InvalidInput naming every bad field, never echoing values). */
export { parseInput } from '../input';

/** The inventory entry of a host that must have the proxy role. */
export function proxyHost(fleet: Fleet, name: string) {
  return hostWithRole(fleet, name, 'proxy');
}
