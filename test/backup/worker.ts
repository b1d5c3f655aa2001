import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import type { Fleet } from '../../activities/fleet';
import { uniqueTaskQueue } from '../support/temporal';

/**
 * One worker for a whole test file (started in beforeAll, stopped in afterAll): the site
 * workflows a file's sites get live on its task queue, and must keep a worker across tests.
 * `overrides` may wrap real activities (to make one fail after doing its real work).
 */
export async function startFileWorker(
  env: TestWorkflowEnvironment,
  fleet: Fleet,
  overrides: (real: Activities) => Partial<Activities> = () => ({}),
): Promise<{ taskQueue: string; stop(): Promise<void> }> {
  const taskQueue = uniqueTaskQueue('backup');
  const codePath = process.env.QM_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('QM_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (globalSetup)');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath },
    activities: (() => {
      const real = createActivities(fleet, { temporal: env.client, taskQueue });
      return { ...real, ...overrides(real) };
    })(),
  });
  const running = worker.run();
  return {
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
