import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { hostName } from '../schema/common';

/** The fleet check: input, result and `progress` query. */

export const CheckFleetInput = z.strictObject({
  /** Host names to check; every host in the inventory when absent. */
  hosts: z.array(hostName).max(1000).optional(),
});
export type CheckFleetInput = z.input<typeof CheckFleetInput>;

export interface CheckFleetResult {
  healthy: string[];
  failed: { host: string; error: string }[];
}

export const checkFleetProgress = defineQuery<CheckFleetResult>('progress');
