import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import type { GitHookConfig } from '../../activities/git/activities';
import type { Bed } from './bed';

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

export interface TestWorkerOptions {
  /** The worker's task queue: default a fresh `test-…` (uniqueTaskQueue for another prefix). */
  taskQueue?: string;
  /** Activities to put in place of the real ones: a set, or made from the real ones (to wrap one). */
  overrides?: Partial<Activities> | ((real: Activities) => Partial<Activities>);
  /** The Git webhook the git activities tell hosts about. */
  gitHook?: GitHookConfig;
}

/**
 * A worker with the real activities (over `bed.fleet`, which may be another fleet than the bed's
 * own), on the workflow bundle the jest setup built once. Not yet running.
 */
async function createTestWorker(
  bed: Pick<Bed, 'env' | 'fleet'>,
  opts: TestWorkerOptions,
): Promise<{ worker: Worker; taskQueue: string }> {
  const taskQueue = opts.taskQueue ?? uniqueTaskQueue('test');
  const codePath = process.env.QM_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('QM_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest (globalSetup)');
  const real = createActivities(bed.fleet, { temporal: bed.env.client, taskQueue, gitHook: opts.gitHook });
  const overrides = typeof opts.overrides === 'function' ? opts.overrides(real) : (opts.overrides ?? {});
  const worker = await Worker.create({
    connection: bed.env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: { codePath },
    activities: { ...real, ...overrides },
  });
  return { worker, taskQueue };
}

/** A test worker (see createTestWorker) running while `fn` runs with its task queue. */
export async function withWorker<T>(
  bed: Pick<Bed, 'env' | 'fleet'>,
  fn: (taskQueue: string) => Promise<T>,
  opts: TestWorkerOptions = {},
): Promise<T> {
  const { worker, taskQueue } = await createTestWorker(bed, opts);
  return worker.runUntil(fn(taskQueue));
}

export interface FileWorker {
  taskQueue: string;
  /** Run `fn` with this worker's task queue (the shape of withWorker). */
  with<T>(fn: (taskQueue: string) => Promise<T>): Promise<T>;
  /** Stop it once its activities are done; again, a no-op. */
  stop(): Promise<void>;
}

/**
 * A test worker for a whole file (started in beforeAll, stopped in afterAll): the site workflows
 * that the file's provisions start live on its task queue, and must keep running (granting locks,
 * answering queries) across tests.
 */
export async function startWorker(
  bed: Pick<Bed, 'env' | 'fleet'>,
  opts: TestWorkerOptions = {},
): Promise<FileWorker> {
  const { worker, taskQueue } = await createTestWorker(bed, opts);
  const running = worker.run();
  return {
    taskQueue,
    with: (fn) => fn(taskQueue),
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
