import { z } from 'zod';
import { SiteId } from '../schema/site';
import {
  BackupSiteInput,
  ChangePlanInput,
  DeployReleaseInput,
  DeprovisionSiteInput,
  ProvisionSiteInput,
  RestoreSiteInput,
  ResumeSiteInput,
  RollbackSiteInput,
  SuspendSiteInput,
} from '../protocol/operations';

/**
 * What the API accepts, built from the workflows' own input schemas (never redefined here): a
 * request that passes these passes the workflow's own check too. The API fills in what the caller
 * may not choose: the site id from the path, `triggeredBy`, and never `skipFinalBackup`.
 */

export const ProvisionRequest = ProvisionSiteInput.pick({ site: true }).meta({
  description: 'Create a site: the full site spec.',
});
export const SuspendRequest = SuspendSiteInput.pick({ reason: true }).meta({
  description: 'Suspend a site (e.g. an unpaid invoice). The body may be empty.',
});
export const ResumeRequest = ResumeSiteInput.pick({}).meta({
  description: 'No fields. The body may be empty.',
});
/** Billing cannot skip the final backup: `skipFinalBackup` is for ops only (Web UI, CLI). */
export const DeprovisionRequest = DeprovisionSiteInput.pick({}).meta({
  description: 'No fields. The body may be empty.',
});
export const ChangePlanRequest = ChangePlanInput.pick({ plan: true }).meta({
  description: "The new plan. Backups follow it from the next one on (the plan's retention).",
});
/** Billing cannot turn pruning off: `prune` is for ops only (Web UI, CLI). */
export const BackupRequest = BackupSiteInput.pick({}).meta({
  description: 'No fields: an on-demand backup, verified, then old backups pruned by the plan.',
});
export const RestoreRequest = RestoreSiteInput.pick({ backupId: true }).meta({
  description: 'The backup to restore the site to (a verified backup of this site).',
});
/**
 * The deploy's own input carries a refinement (exactly one of commit and ref), which `pick` cannot
 * keep: the fields come from it, and startOperation checks the whole input against it (a 400 on
 * `commit` when both or neither are given).
 */
export const DeployRequest = z
  .strictObject({
    commit: DeployReleaseInput.shape.commit,
    ref: DeployReleaseInput.shape.ref,
    reason: DeployReleaseInput.shape.reason,
  })
  .meta({
    description:
      'What to deploy: exactly one of `commit` (40 hex digits) and `ref` (a branch, tag or abbreviated ' +
      'commit, resolved on the Git host); `reason` is kept with the deploy for the audit.',
  });
export const RollbackRequest = RollbackSiteInput.pick({ release: true, reason: true }).meta({
  description: "A release still kept on the site's app servers (a commit it ran before), or 'initial'.",
});

export const SiteParams = z.strictObject({ siteId: SiteId });

/** The operations the API starts, each one workflow type. */
export const OperationKind = z.enum([
  'provision',
  'deprovision',
  'suspend',
  'resume',
  'change-plan',
  'backup',
  'restore',
  'deploy',
  'rollback',
]);
export type OperationKind = z.infer<typeof OperationKind>;

/**
 * `Idempotency-Key`: the caller's id for this request (the billing order id does well), 1-64
 * letters, digits, `_` and `-`, starting with a letter or digit. It becomes part of the workflow
 * id, so the same key never starts a second operation.
 */
export const IdempotencyKey = z
  .string({ error: 'the Idempotency-Key header is required on POST, PATCH and DELETE' })
  .min(1, 'the Idempotency-Key header is required on POST, PATCH and DELETE')
  .max(64, 'an Idempotency-Key is at most 64 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]*$/,
    'an Idempotency-Key is letters, digits, _ and -, starting with a letter or digit',
  );

/** An operation's id is its workflow id: `<operation>:<siteId>:<idempotency key>`. */
export function operationId(kind: OperationKind, siteId: string, key: string): string {
  return `${kind}:${siteId}:${key}`;
}

export const OperationId = z
  .string()
  .max(160)
  .transform((id, ctx) => {
    const [kind, siteId, key, ...rest] = id.split(':');
    const parts = z.tuple([OperationKind, SiteId, IdempotencyKey]).safeParse([kind, siteId ?? '', key ?? '']);
    if (!parts.success || rest.length) {
      ctx.addIssue({
        code: 'custom',
        message: `an operation id is <${OperationKind.options.join('|')}>:<siteId>:<idempotency key>`,
      });
      return z.NEVER;
    }
    const [k, s, i] = parts.data;
    return { id, kind: k, siteId: s, key: i };
  });
export type ParsedOperationId = Exclude<z.output<typeof OperationId>, never>;

/**
 * Zod issues as `{ field: message }`, one entry per bad field: `site.domains.0`; an unknown key
 * is named as a field of its own (`site.colour`); `prefix` places path and header errors
 * (`params.siteId`, `headers.idempotency-key`).
 */
export function fieldErrors(error: z.ZodError, prefix?: string): Record<string, string> {
  const fields: Record<string, string> = {};
  const put = (path: PropertyKey[], message: string) => {
    const name = [...(prefix ? [prefix] : []), ...path.map(String)].join('.') || '(body)';
    fields[name] ??= message;
  };
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys')
      for (const key of issue.keys) put([...issue.path, key], 'unknown field');
    else put(issue.path, issue.message);
  }
  return fields;
}
