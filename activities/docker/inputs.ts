import { z } from 'zod';
import { describeIssues, hostName } from '../../schema/common';
import { ContainerSpec, dockerName, ImageRef, Labels, MAX_STOP_TIMEOUT_SEC } from '../../schema/container';
import { failure, FailureType } from '../errors';

/** The inputs of the Docker activities: one plain JSON object each, checked at the activity's edge. */

export const EnsureImageInput = z.strictObject({
  host: hostName,
  image: ImageRef,
  /** Copy from this host; else from the first other host that has the image. */
  sourceHost: hostName.optional(),
});

export const EnsureContainerInput = z.strictObject({ host: hostName, spec: ContainerSpec });

export const StopContainerInput = z.strictObject({
  host: hostName,
  name: dockerName('container name'),
  /** Seconds between SIGTERM and SIGKILL; the container's own stop timeout when absent. */
  timeoutSec: z.number().int().min(0).max(MAX_STOP_TIMEOUT_SEC).optional(),
});

export const RemoveContainerInput = z.strictObject({
  host: hostName,
  name: dockerName('container name'),
  /** Also remove its anonymous volumes (never named ones). */
  removeVolumes: z.boolean().default(false),
});

export const EnsureNetworkInput = z.strictObject({
  host: hostName,
  name: dockerName('network name'),
  labels: Labels.default({}),
  internal: z.boolean().default(false),
});

export const RemoveNetworkInput = z.strictObject({ host: hostName, name: dockerName('network name') });

export const EnsureVolumeInput = z.strictObject({
  host: hostName,
  name: dockerName('volume name'),
  labels: Labels.default({}),
});

export const RemoveVolumeInput = z.strictObject({ host: hostName, name: dockerName('volume name') });

export const WaitHealthyInput = z.strictObject({
  host: hostName,
  name: dockerName('container name'),
  timeoutMs: z.number().int().min(1).max(3_600_000),
});

export const ListContainersInput = z.strictObject({
  host: hostName,
  /** Containers carrying all of these labels; at least one, so a list is always scoped. */
  labels: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'label keys are lowercase'), z.string().max(1024))
    .refine((l) => Object.keys(l).length > 0, 'give at least one label to filter on'),
});

/**
 * Parse an activity's input, or fail with InvalidInput (never retried) naming every bad field:
 * `invalid ensureContainer input: spec.name: container name must be lowercase letters...`. The
 * input itself is not echoed back: it may hold secrets (env values).
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, activity: string): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success)
    throw failure(FailureType.InvalidInput, `invalid ${activity} input: ${describeIssues(result.error)}`, {
      fields: result.error.issues.map((i) => i.path.map(String).join('.')),
    });
  return result.data;
}
