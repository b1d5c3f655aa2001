import { ApplicationFailure, upsertMemo } from '@temporalio/workflow';
import { z } from 'zod';
import { ChangePlanInput } from '../protocol/operations';
import type { Plan, SiteSpec } from '../schema/site';
import { parseWorkflowInput } from './lib/input';
import { startOperation } from './lib/operation';
import { RETENTION, type RetentionPolicy } from './lib/retention';
import { withSiteLock } from './lib/siteLock';

export interface ChangePlanResult {
  siteId: string;
  /** changed: the record holds the new plan. unchanged: it already did. */
  status: 'changed' | 'unchanged';
  plan: z.infer<typeof Plan>;
  previous: z.infer<typeof Plan>;
  /** The backup retention the site now has (applied by its next verified backup). */
  retention: RetentionPolicy;
}

/**
 * Change a site's plan (billing's up- or downgrade), as ops would:
 *   lock the site → check it is active or suspended → record the new plan in the site's record.
 * What a plan decides follows the record: every backup prunes by the retention of the plan the
 * record holds when it runs (workflows/lib/retention.ts), and the nightly run reads it per site.
 * Nothing is pruned here: a downgrade's smaller retention takes effect with the next verified
 * backup, never without a fresh good backup in place. Run twice, the second finds the plan set.
 */
export async function changePlan(input: ChangePlanInput): Promise<ChangePlanResult> {
  const { siteId, plan, triggeredBy } = parseWorkflowInput(ChangePlanInput, input, 'changePlan input');
  const op = startOperation({
    operation: 'change-plan',
    siteId,
    triggeredBy,
    summary: `change the plan of ${siteId} to ${plan}`,
  });
  return withSiteLock(siteId, 'change-plan', op.progress, async (lock) => {
    const { record } = lock;
    if (!['active', 'suspended'].includes(record.state) || !record.spec)
      throw ApplicationFailure.create({
        type: 'Conflict',
        message: `site ${siteId} is ${record.state}; a plan changes only on an active or suspended site`,
        nonRetryable: true,
      });
    const previous = record.spec.plan;
    const result: ChangePlanResult = {
      siteId,
      status: previous === plan ? 'unchanged' : 'changed',
      plan,
      previous,
      retention: RETENTION[plan],
    };
    if (result.status === 'changed') {
      op.step('record the plan');
      const spec: SiteSpec = { ...record.spec, plan };
      await lock.update({ spec });
    }
    upsertMemo({
      summary: `plan of ${siteId}: ${previous} → ${plan}${result.status === 'unchanged' ? ' (unchanged)' : ''}`,
    });
    op.finish();
    return result;
  });
}
