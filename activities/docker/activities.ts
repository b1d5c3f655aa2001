import type { z } from 'zod';
import type { Fleet } from '../fleet';
import { ensureContainer, removeContainer, stopContainer } from './container';
import { ensureImage } from './image';
import {
  EnsureContainerInput,
  EnsureImageInput,
  EnsureNetworkInput,
  EnsureVolumeInput,
  ListContainersInput,
  parseInput,
  RemoveContainerInput,
  RemoveNetworkInput,
  RemoveVolumeInput,
  StopContainerInput,
  WaitHealthyInput,
} from './inputs';
import { listContainers } from './listContainers';
import { ensureNetwork, removeNetwork } from './network';
import { ensureVolume, removeVolume } from './volume';
import { waitHealthy } from './waitHealthy';

/**
 * The Docker activities: each takes one plain JSON object, validates it (bad input is InvalidInput,
 * before anything reaches a host) and calls the operation of the same name, whose doc comment says
 * why running it twice is safe.
 */
export function makeDockerActivities(fleet: Fleet) {
  return {
    async ensureImage(input: z.input<typeof EnsureImageInput>) {
      const i = parseInput(EnsureImageInput, input, 'ensureImage');
      return ensureImage(fleet, i.host, i.image, { sourceHost: i.sourceHost });
    },
    async ensureContainer(input: z.input<typeof EnsureContainerInput>) {
      const i = parseInput(EnsureContainerInput, input, 'ensureContainer');
      return ensureContainer(fleet, i.host, i.spec);
    },
    async stopContainer(input: z.input<typeof StopContainerInput>) {
      const i = parseInput(StopContainerInput, input, 'stopContainer');
      return stopContainer(fleet, i.host, i.name, { timeoutSec: i.timeoutSec });
    },
    async removeContainer(input: z.input<typeof RemoveContainerInput>) {
      const i = parseInput(RemoveContainerInput, input, 'removeContainer');
      return removeContainer(fleet, i.host, i.name, { removeVolumes: i.removeVolumes });
    },
    async ensureNetwork(input: z.input<typeof EnsureNetworkInput>) {
      const i = parseInput(EnsureNetworkInput, input, 'ensureNetwork');
      return ensureNetwork(fleet, i.host, { name: i.name, labels: i.labels, internal: i.internal });
    },
    async removeNetwork(input: z.input<typeof RemoveNetworkInput>) {
      const i = parseInput(RemoveNetworkInput, input, 'removeNetwork');
      return removeNetwork(fleet, i.host, i.name);
    },
    async ensureVolume(input: z.input<typeof EnsureVolumeInput>) {
      const i = parseInput(EnsureVolumeInput, input, 'ensureVolume');
      return ensureVolume(fleet, i.host, { name: i.name, labels: i.labels });
    },
    async removeVolume(input: z.input<typeof RemoveVolumeInput>) {
      const i = parseInput(RemoveVolumeInput, input, 'removeVolume');
      return removeVolume(fleet, i.host, i.name);
    },
    async waitHealthy(input: z.input<typeof WaitHealthyInput>) {
      const i = parseInput(WaitHealthyInput, input, 'waitHealthy');
      return waitHealthy(fleet, i.host, i.name, i.timeoutMs);
    },
    async listContainers(input: z.input<typeof ListContainersInput>) {
      const i = parseInput(ListContainersInput, input, 'listContainers');
      return listContainers(fleet, i.host, i.labels);
    },
  };
}

export type DockerActivities = ReturnType<typeof makeDockerActivities>;
