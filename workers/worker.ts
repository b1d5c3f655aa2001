import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Fleet } from '../activities/fleet';
import type { GitHookConfig } from '../activities/git/activities';
import { gitHookConfig, GitHookEnv, loadEnv } from '../config';

export interface StartWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  fleet: Fleet;
  /** For the activities that talk to Temporal (site locks). */
  client: Client;
  /** A prebuilt workflow bundle (tests build it once a run); else workflows/ is bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** The payload codec (client/codec.ts): the same one the API's and the CLI's clients use. */
  dataConverter?: DataConverter;
  /** On shutdown (SIGTERM), how long in-flight activities may run on before they are cancelled. */
  shutdownGraceTime?: WorkerOptions['shutdownGraceTime'];
  /** Where the Git host's hook notifies the platform (default: QM_GIT_HOOK_URL and its secret file). */
  gitHook?: GitHookConfig;
}

/**
 * Sandbox interceptors bundled with the workflows (operation metrics). A prebuilt bundle has them
 * already (deploy/build.ts bundles with them).
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('./workflowInterceptors')];

/** The Quartermaster worker: every workflow type and every activity, on one task queue. */
export function createWorker(opts: StartWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue,
    dataConverter: opts.dataConverter,
    activities: createActivities(opts.fleet, {
      temporal: opts.client,
      taskQueue: opts.taskQueue,
      gitHook: opts.gitHook ?? gitHookConfig(loadEnv(GitHookEnv)),
    }),
    ...(opts.shutdownGraceTime !== undefined ? { shutdownGraceTime: opts.shutdownGraceTime } : {}),
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : {
          workflowsPath: require.resolve('../workflows'),
          interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
        }),
  });
}
