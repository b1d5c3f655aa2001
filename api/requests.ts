import { z } from 'zod';
import { SiteId } from '../schema/site';
import {
  BackupSiteInput,
  ChangePlanInput,
  DeployReleaseInput,
  DeprovisionSiteInput,
  ProvisionSiteInput,
  RepairSiteInput,
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

export const RepairRequest = RepairSiteInput.pick({ reason: true }).meta({
  description:
    "Why (kept with the repair for the audit). The body may be empty: the site's record says what to converge onto.",
});

export const SiteParams = z.strictObject({ siteId: SiteId });

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
