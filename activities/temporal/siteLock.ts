import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { slug } from '../../schema/common';
import { requestLockSignal, siteWorkflowId, type LockHolder } from '../../protocol/site';
import { failure, FailureType } from '../errors';

const LockRequest = z.strictObject({
  siteId: slug('site id'),
  holder: z.strictObject({
    workflowId: z.string().min(1),
    runId: z.string().min(1),
    operation: z.string().min(1),
  }),
});

/**
 * The activities an operation workflow needs from Temporal itself: a workflow cannot
 * signal-with-start another workflow, so asking a site's workflow for its lock (starting it if the
 * site has none yet) is an activity.
 */
export function makeTemporalActivities(client: Client | undefined, taskQueue: string) {
  const needClient = (): Client => {
    if (!client) throw failure(FailureType.InvalidInput, 'this worker has no Temporal client for site locks');
    return client;
  };
  return {
    /**
     * Queue `holder` for the site's lock, starting the site's workflow if it does not run. Safe to
     * repeat: the site workflow ignores a request from a holder already queued, and re-sends the
     * grant to the holder that already has the lock.
     */
    async requestSiteLock(input: { siteId: string; holder: LockHolder }): Promise<void> {
      const parsed = LockRequest.safeParse(input);
      if (!parsed.success)
        throw failure(FailureType.InvalidInput, `requestSiteLock: ${parsed.error.message}`);
      const { siteId, holder } = parsed.data;
      await needClient().workflow.signalWithStart('site', {
        workflowId: siteWorkflowId(siteId),
        taskQueue,
        args: [{ siteId }],
        signal: requestLockSignal,
        signalArgs: [holder],
      });
    },

    /** RUNNING, COMPLETED, FAILED, … or NOT_FOUND; read-only. */
    async workflowStatus(input: { workflowId: string; runId?: string }): Promise<string> {
      try {
        const d = await needClient().workflow.getHandle(input.workflowId, input.runId).describe();
        return d.status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
        throw err;
      }
    },
  };
}
