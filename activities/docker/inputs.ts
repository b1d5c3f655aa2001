import { z } from 'zod';
import { hostName } from '../../schema/common';
import { ContainerSpec, dockerName, ImageRef, Labels, MAX_STOP_TIMEOUT_SEC } from '../../schema/container';

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

/** The shared edge check (InvalidInput naming every bad field, never echoing values). */
export { parseInput } from '../input';
