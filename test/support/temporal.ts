import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import type { Fleet } from '../../activities/fleet';

let runtimeInstalled = false;

/** Attach to the dev server the jest setup started (never a fixed-sleep start of our own). */
export async function testEnv(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // already installed in this process by an earlier test file
    }
  }
  const address = process.env.QM_TEST_TEMPORAL_ADDRESS;
  if (!address)
    throw new Error('QM_TEST_TEMPORAL_ADDRESS is not set: run the tests through jest (globalSetup)');
  return TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
}

export function uniqueTaskQueue(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * A worker on a fresh task queue with the real activities (optionally some replaced, e.g. to
 * inject a failure), running while `fn` runs. The workflow bundle is the one built once a run.
 */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  fleet: Fleet,
  fn: (taskQueue: string) => Promise<T>,
  overrides: Partial<Activities> = {},
): Promise<T> {
  const taskQueue = uniqueTaskQueue('test');
  const codePath = process.env.QM_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('QM_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (globalSetup)');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath },
    activities: { ...createActivities(fleet, { temporal: env.client, taskQueue }), ...overrides },
  });
  return worker.runUntil(fn(taskQueue));
}
