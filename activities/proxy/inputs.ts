import { z } from 'zod';
import { describeIssues, hostName } from '../../schema/common';
import { BackendState, DomainName, Route, SiteId } from '../../schema/route';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';

/** The inputs of the proxy activities, checked at the activity edge before anything runs. */

export const EnsureProxyInput = z.strictObject({ host: hostName });
export type EnsureProxyInput = z.input<typeof EnsureProxyInput>;

export const PutSiteRouteInput = z.strictObject({ host: hostName, route: Route });
export type PutSiteRouteInput = z.input<typeof PutSiteRouteInput>;

export const SiteOnProxyInput = z.strictObject({ host: hostName, siteId: SiteId });
export type SiteOnProxyInput = z.input<typeof SiteOnProxyInput>;

export const SetBackendStateInput = z.strictObject({
  host: hostName,
  siteId: SiteId,
  backendHost: hostName,
  /** Only the backend on this port (a host may run two during a deploy); all of the host's if absent. */
  backendPort: z.number().int().min(1).max(65535).optional(),
  state: BackendState,
});
export type SetBackendStateInput = z.input<typeof SetBackendStateInput>;

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

/** Parse an activity's input; anything wrong is InvalidInput (never retried), naming every bad field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success)
    throw failure(FailureType.InvalidInput, `invalid ${what}: ${describeIssues(result.error)}`, {
      issues: result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    });
  return result.data;
}

/** The inventory entry of a host that must have the proxy role. */
export function proxyHost(fleet: Fleet, name: string) {
  const host = fleet.pool.host(name);
  if (!host.roles.includes('proxy'))
    throw failure(FailureType.InvalidInput, `${name} is not a proxy host (roles: ${host.roles.join(', ')})`, {
      host: name,
    });
  return host;
}
