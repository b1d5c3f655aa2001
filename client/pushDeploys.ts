import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { deployWorkflowId } from '../protocol/ids';
import type { DeployReleaseInput, PushTrigger } from '../protocol/operations';
import { siteQuery } from '../protocol/site';
import type { deployRelease } from '../workflows';

/**
 * The deploys a push starts (the Git webhook, api/gitHook.ts): one deployRelease per active site
 * that tracks the pushed repository and branch, with the workflow id `deploy:<site>:<commit>` and
 * REJECT_DUPLICATE, so a notification that comes twice never deploys twice.
 */

export interface PushDeploy {
  siteId: string;
  workflowId: string;
  /** started: a new deploy; duplicate: this notification (or an identical one) already started it. */
  status: 'started' | 'duplicate';
}

export interface PushDeployOptions {
  /** Where the site workflows (and so the deploys) run. */
  taskQueue: string;
  /** Settings every push deploy gets (e.g. a shorter drain in tests). */
  deployDefaults?: Pick<DeployReleaseInput, 'drainSeconds' | 'healthTimeoutSeconds' | 'keepReleases'>;
}

/**
 * The active sites whose record says they track `repo` and `branch`: every running site workflow
 * on the task queue (visibility), each asked for its record (the `site` query, 16 at a time).
 */
export async function sitesTracking(
  client: Client,
  taskQueue: string,
  repo: string,
  branch: string,
): Promise<string[]> {
  const ids: string[] = [];
  const query = `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, '')}'`;
  for await (const w of client.workflow.list({ query })) ids.push(w.workflowId);
  const tracking: string[] = [];
  for (let n = 0; n < ids.length; n += 16)
    await Promise.all(
      ids.slice(n, n + 16).map(async (id) => {
        const { record } = await client.workflow.getHandle(id).query(siteQuery);
        if (record.state === 'active' && record.spec?.git.repo === repo && record.spec.git.branch === branch)
          tracking.push(record.siteId);
      }),
    );
  return tracking.sort();
}

/** One deploy of `commit` per site tracking the pushed branch; a repeated push starts nothing new. */
export async function deployPush(
  client: Client,
  opts: PushDeployOptions,
  commit: string,
  push: PushTrigger,
): Promise<PushDeploy[]> {
  const sites = await sitesTracking(client, opts.taskQueue, push.repo, push.branch);
  return Promise.all(
    sites.map(async (siteId): Promise<PushDeploy> => {
      const workflowId = deployWorkflowId(siteId, commit);
      try {
        await client.workflow.start<typeof deployRelease>('deployRelease', {
          taskQueue: opts.taskQueue,
          workflowId,
          args: [{ ...opts.deployDefaults, siteId, commit, push, triggeredBy: `push:${push.pusher}` }],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
        return { siteId, workflowId, status: 'started' };
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError)
          return { siteId, workflowId, status: 'duplicate' };
        throw err;
      }
    }),
  );
}
