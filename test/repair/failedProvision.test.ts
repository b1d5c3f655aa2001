import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import type { Activities } from '../../activities';
import { siteQuery, siteWorkflowId } from '../../protocol/site';
import { checkFleet, deprovisionSite, provisionSite, repairSite } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';
import { uniqueTaskQueue, withWorker } from '../support/temporal';

/**
 * A provision whose undo cannot finish leaves the site failed with its cause, where it was placed
 * and what the undo left behind; there is no site to return to, so a repair refuses it and the
 * fleet check starts none (saying why), and a deprovision sweeps what is left.
 */

jest.setTimeout(180_000);

let bed: Bed;
beforeAll(async () => {
  bed = await openBed();
});
afterAll(() => bed?.close());

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause as ApplicationFailure;
}

test('a provision whose undo fails: failed with its cause and leftovers; repair refused, the check says why; deprovision sweeps it', async () => {
  const site = testSite({ siteId: `rep-p-${Math.random().toString(36).slice(2, 7)}`, appServers: 1 });
  const overrides: Partial<Activities> = {
    putSiteRoute: async () => {
      throw ApplicationFailure.nonRetryable('injected failure in putSiteRoute', 'Injected');
    },
    removeSiteContainers: async () => {
      throw ApplicationFailure.nonRetryable('injected failure in removeSiteContainers', 'Injected');
    },
  };
  // one task queue for both workers: the site's own workflow lives there
  const queue = uniqueTaskQueue('repair');
  await withWorker(
    bed,
    async (taskQueue) => {
      const failure = await failureOf(
        bed.env.client.workflow.execute(provisionSite, {
          taskQueue,
          workflowId: `provision-${site.siteId}`,
          args: [{ site, triggeredBy: 'test' }],
        }),
      );
      expect(failure.message).toContain('UNDO INCOMPLETE');
      const { record } = await bed.env.client.workflow
        .getHandle(siteWorkflowId(site.siteId))
        .query(siteQuery);
      expect(record).toMatchObject({
        state: 'failed',
        placement: { appHosts: [expect.any(String)] },
        failure: {
          operation: 'provision',
          workflowId: `provision-${site.siteId}`,
          step: 'routes',
          cause: 'injected failure in putSiteRoute',
          stateBefore: 'new',
          outOfLine: [
            expect.stringMatching(/^remove containers on host\d: injected failure in removeSiteContainers$/),
          ],
        },
      });

      const refused = await failureOf(
        bed.env.client.workflow.execute(repairSite, {
          taskQueue,
          workflowId: `repair-${site.siteId}`,
          args: [{ siteId: site.siteId }],
        }),
      );
      expect(refused.type).toBe('Conflict');
      expect(refused.message).toContain('deprovision it (skipFinalBackup)');

      const check = await bed.env.client.workflow.execute(checkFleet, {
        taskQueue,
        workflowId: `check-${site.siteId}`,
        args: [{ sites: [site.siteId], repair: true }],
      });
      expect(check.sites).toEqual([
        {
          siteId: site.siteId,
          state: 'failed',
          problems: expect.arrayContaining([
            'failed: provision failed at "routes": injected failure in putSiteRoute',
          ]),
        },
      ]);
      expect(check.repairs).toEqual([
        {
          siteId: site.siteId,
          started: false,
          why: expect.stringContaining('deprovision it (skipFinalBackup)'),
        },
      ]);
    },
    { overrides, taskQueue: queue },
  );
  await withWorker(
    bed,
    (taskQueue) =>
      bed.env.client.workflow.execute(deprovisionSite, {
        taskQueue,
        workflowId: `deprovision-${site.siteId}`,
        args: [{ siteId: site.siteId, skipFinalBackup: true }],
      }),
    { taskQueue: queue },
  );
  expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
  await removeGitRepoOnHost(bed.fleet, site.git!.repo).catch(() => undefined);
});
