import { z } from 'zod';
import { describeIssues } from '../schema/common';

/**
 * The worker's configuration, from the environment, validated at start: one error lists every
 * missing or bad variable.
 */
export const WorkerEnv = z
  .object({
    TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().default('default'),
    QM_TASK_QUEUE: z.string().default('quartermaster'),
    QM_INVENTORY: z.string().min(1, 'path of the fleet inventory (JSON or YAML)'),
    QM_SSH_KEY: z.string().optional(),
    SSH_AUTH_SOCK: z.string().optional(),
  })
  .refine((env) => env.QM_SSH_KEY || env.SSH_AUTH_SOCK, {
    message: 'set QM_SSH_KEY (a private key file) or SSH_AUTH_SOCK (an ssh-agent)',
    path: ['QM_SSH_KEY'],
  });
export type WorkerEnv = z.infer<typeof WorkerEnv>;

export function loadWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const parsed = WorkerEnv.safeParse(env);
  if (!parsed.success) throw new Error(`bad configuration: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
