import type { z } from 'zod';
import { describeIssues } from '../schema/common';
import type { HostRole, Host } from '../schema/inventory';
import { failure, FailureType } from './errors';
import type { Fleet } from './fleet';

/**
 * The edge of an activity: its one JSON input checked before anything reaches a host, and the
 * inventory checks every activity repeats (the host exists and has the role the step needs).
 * Shared by the site and storage activities (and meant for any new group of activities).
 */

/**
 * Parse an activity's input, or fail with InvalidInput (never retried) naming every bad field:
 * `invalid placeSite input: appServers: Too small: expected number to be >=1`. Values are never
 * echoed back (an input may hold a secret), only the paths of the bad fields and the rules broken.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, activity: string): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success)
    throw failure(FailureType.InvalidInput, `invalid ${activity} input: ${describeIssues(result.error)}`, {
      fields: result.error.issues.map((i) => i.path.map(String).join('.')),
    });
  return result.data;
}

/** The inventory entry of `name`, which must have `role` (else InvalidInput, never retried). */
export function hostWithRole(fleet: Fleet, name: string, role: HostRole): Host {
  const host = fleet.pool.host(name);
  if (!host.roles.includes(role))
    throw failure(
      FailureType.InvalidInput,
      `${name} is not a ${role} host (its roles: ${host.roles.join(', ')})`,
      { host: name, role },
    );
  return host;
}
