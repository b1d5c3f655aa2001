import { z } from 'zod';
import { describeIssues } from '../schema/common';

/** Where Temporal is, for the API and the CLI (the same variables as the worker's). */
export const TemporalEnv = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  QM_TASK_QUEUE: z.string().min(1).default('quartermaster'),
});
export type TemporalEnv = z.infer<typeof TemporalEnv>;

/**
 * `QM_API_SECRETS`: the shared secrets requests are signed with, comma-separated: one, or two
 * while a secret rotates. Each at least 32 characters (e.g. `openssl rand -hex 32`).
 */
export const ApiSecrets = z
  .string({ error: 'QM_API_SECRETS is required (the shared signing secrets, comma-separated)' })
  .transform((s) => s.split(',').map((x) => x.trim()))
  .pipe(
    z
      .array(z.string().min(32, 'each secret must be at least 32 characters'))
      .min(1)
      .max(2, 'at most two secrets at once (the current one and the one being rotated out)')
      .refine((a) => new Set(a).size === a.length, 'the secrets must differ'),
  );

export const ApiEnv = TemporalEnv.extend({
  QM_API_SECRETS: ApiSecrets,
  QM_API_HOST: z.string().min(1).default('127.0.0.1'),
  QM_API_PORT: z.coerce.number().int().min(0).max(65535).default(8480),
  QM_CODEC_KEY: z.string({ error: 'QM_CODEC_KEY is required (the payload encryption key, base64)' }).min(1),
  /** The Git hook's signing secrets, comma-separated (one, or two while rotating): serves POST /hooks/git. */
  QM_GIT_HOOK_SECRETS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(z.string().min(32, 'each Git hook secret must be at least 32 characters')).min(1).max(2))
    .optional(),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

/** Parse the environment or throw one error naming every bad variable (never their values). */
export function loadEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): z.output<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new Error(`bad configuration: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
