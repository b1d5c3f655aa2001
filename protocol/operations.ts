import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { CommitId, GitRef } from '../schema/release';
import { GitBranch, GitRepo, Plan, SiteId, SiteSpec, type Placement } from '../schema/site';
import { BackupId, INITIAL_RELEASE } from './ids';

/**
 * The site operations (provision, deprovision, suspend, resume, change of plan, backup, restore,
 * deploy, rollback): each one's input schema (the workflow checks its input against it; the API
 * and `qm` check requests against it before they start anything) and result, and the `progress`
 * query every one of them answers while it runs.
 */

/** What every operation shows ops while it runs (the `progress` query). */
export interface OperationProgress {
  operation: string;
  siteId: string;
  waitingForLock: boolean;
  /** The step running now, and those done, in order. */
  step: string;
  done: string[];
  /** Per host, what it is doing or how it ended. */
  hosts: Record<string, string>;
}

export const progressQuery = defineQuery<OperationProgress>('progress');

export const ProvisionSiteInput = z.strictObject({
  site: SiteSpec,
  /** Who asked: `ops:<name>`, `api:<client>`, `schedule` (a search attribute). */
  triggeredBy: z.string().max(100).optional(),
});
export type ProvisionSiteInput = z.input<typeof ProvisionSiteInput>;

export interface ProvisionSiteResult {
  siteId: string;
  state: 'active';
  placement: Placement;
  /** True when the site was already active with this spec, and nothing was done. */
  alreadyProvisioned: boolean;
  /**
   * The site's repository on the Git host (when the fleet has one): `hook: 'not-configured'` means
   * this worker had no webhook configuration, so pushes to it deploy nothing until one installs it.
   */
  git?: { repo: string; host: string; path: string; repository: 'created' | 'existing'; hook: string };
}

export const DeprovisionSiteInput = z.strictObject({
  siteId: SiteId,
  /** Skip the final database snapshot and files archive (only for sites that never held data). */
  skipFinalBackup: z.boolean().default(false),
  triggeredBy: z.string().max(100).optional(),
});
export type DeprovisionSiteInput = z.input<typeof DeprovisionSiteInput>;

export interface DeprovisionSiteResult {
  siteId: string;
  state: 'deleted';
  /** Where the final backup was kept (database snapshot on the DB host, files archive on the storage host). */
  finalBackup?: { databaseSnapshot: string; filesArchive: string };
  /**
   * The site's Git repository, which deprovisioning keeps (the customer's code and history: see
   * the README, Site lifecycle); pushes to it deploy nothing once no active site tracks it.
   */
  keptRepository?: { repo: string; host: string };
}

export const SuspendSiteInput = z.strictObject({
  siteId: SiteId,
  /** Why (e.g. the unpaid invoice's number): kept in the memo for ops. */
  reason: z.string().max(200).optional(),
  triggeredBy: z.string().max(100).optional(),
});
export type SuspendSiteInput = z.input<typeof SuspendSiteInput>;

export const ResumeSiteInput = z.strictObject({
  siteId: SiteId,
  triggeredBy: z.string().max(100).optional(),
});
export type ResumeSiteInput = z.input<typeof ResumeSiteInput>;

export const ChangePlanInput = z.strictObject({
  siteId: SiteId,
  plan: Plan,
  triggeredBy: z.string().max(100).optional(),
});
export type ChangePlanInput = z.input<typeof ChangePlanInput>;

export const BackupSiteInput = z.strictObject({
  siteId: SiteId,
  /** scheduled (the nightly run) or on-demand (ops, the API). */
  kind: z.enum(['scheduled', 'on-demand']).default('on-demand'),
  /** Prune the site's old backups by its plan's retention once this one is verified. */
  prune: z.boolean().default(true),
  triggeredBy: z.string().max(100).optional(),
});
export type BackupSiteInput = z.input<typeof BackupSiteInput>;

export interface TakenBackup {
  backupId: string;
  /** Where it is: `host:/srv/qm/backups/<site>/<backupId>`. */
  location: string;
  createdAt: string;
  database: { bytes: number; tables: number; rows: number; changedDuringDump: string[] };
  files: { bytes: number; files: number; fileBytes: number };
}

export interface BackupSiteResult extends TakenBackup {
  siteId: string;
  retention: { kept: string[]; pruned: string[]; error?: string };
}

export const RestoreSiteInput = z.strictObject({
  siteId: SiteId,
  /** The backup to go back to (its directory name on the storage host, e.g. 20260301T010000Z-k3x9q1). */
  backupId: BackupId,
  triggeredBy: z.string().max(100).optional(),
});
export type RestoreSiteInput = z.input<typeof RestoreSiteInput>;

export interface RestoreSiteResult {
  siteId: string;
  restored: string;
  /** The backup taken just before, to go back to if the restore was a mistake. */
  safetyBackup: TakenBackup;
}

/** What a push told the platform (the Git hook's notification): the audit of a push deploy. */
export const PushTrigger = z.strictObject({
  repo: GitRepo,
  branch: GitBranch,
  before: z.string().regex(/^[0-9a-f]{40}$/, 'before must be 40 hex digits'),
  pusher: z.string().max(100),
  pushedAt: z.string().max(40).optional(),
});
export type PushTrigger = z.infer<typeof PushTrigger>;

export const DeployReleaseInput = z
  .strictObject({
    siteId: SiteId,
    /** The commit to deploy; or `ref` (branch, tag, abbreviated id), resolved on the Git host. */
    commit: CommitId.optional(),
    ref: GitRef.optional(),
    /** Set when a push started the deploy: it then deploys only if the commit is still the branch's head. */
    push: PushTrigger.optional(),
    /** Who asked: `push:<pusher>`, `ops:<name>`, `api:<client>` (a search attribute). */
    triggeredBy: z.string().max(100).optional(),
    reason: z.string().max(200).optional(),
    /** Release folders kept on each app host for instant rollback (the live one included). */
    keepReleases: z.number().int().min(2).max(20).default(3),
    /** After traffic moves, at most how long requests in flight on the old containers get to finish. */
    drainSeconds: z.number().int().min(0).max(600).default(10),
    /** How long a new container may take to become healthy. */
    healthTimeoutSeconds: z.number().int().min(2).max(1800).default(120),
  })
  .refine((i) => (i.commit === undefined) !== (i.ref === undefined), {
    message: 'give exactly one of commit and ref',
    path: ['commit'],
  })
  .refine((i) => !i.push || i.commit, { message: 'a push deploy names its commit', path: ['commit'] });
export type DeployReleaseInput = z.input<typeof DeployReleaseInput>;

export interface DeployReleaseResult {
  siteId: string;
  /**
   * deployed: live on every app server. unchanged: it already was. superseded: a newer push to
   * the branch arrived before this one's turn (that one deploys; this one did nothing).
   * not-tracking: the site no longer tracks the pushed repo and branch.
   */
  status: 'deployed' | 'unchanged' | 'superseded' | 'not-tracking';
  release: string;
  previous?: string;
  supersededBy?: string;
  triggeredBy: string;
  trigger: { kind: 'push'; push: PushTrigger } | { kind: 'request'; ref?: string; reason?: string };
  /** Per app host, how it ended. */
  hosts?: Record<string, string>;
  snapshot?: string;
  /** Release folders kept on the app hosts after this deploy (newest first on the first host). */
  kept?: string[];
  pruneProblems?: string[];
}

export const RollbackSiteInput = z.strictObject({
  siteId: SiteId,
  /** A release still kept on every app server (deployRelease keeps the last few), or 'initial'. */
  release: z.union([CommitId, z.literal(INITIAL_RELEASE)]),
  triggeredBy: z.string().max(100).optional(),
  reason: z.string().max(200).optional(),
  drainSeconds: z.number().int().min(0).max(600).default(10),
  healthTimeoutSeconds: z.number().int().min(2).max(1800).default(120),
});
export type RollbackSiteInput = z.input<typeof RollbackSiteInput>;

export interface RollbackSiteResult {
  siteId: string;
  status: 'rolled-back' | 'unchanged';
  release: string;
  previous: string;
  triggeredBy: string;
}

export const RepairSiteInput = z.strictObject({
  siteId: SiteId,
  /** Who asked: `ops:<name>`, `api:<client>`, `fleet-check` (a search attribute). */
  triggeredBy: z.string().max(100).optional(),
  reason: z.string().max(200).optional(),
  /** After traffic moves, at most how long requests in flight on the old containers get to finish. */
  drainSeconds: z.number().int().min(0).max(600).default(10),
  /** How long a container (re)started by the repair may take to become healthy. */
  healthTimeoutSeconds: z.number().int().min(2).max(1800).default(120),
});
export type RepairSiteInput = z.input<typeof RepairSiteInput>;

/** What a repair found and did on one host of the site. */
export interface HostRepair {
  /** What the host is to the site: app, proxy, db, storage, cache. */
  roles: string[];
  reachable: boolean;
  /** Why it did not answer. */
  error?: string;
  /** What the repair changed there (`nginx started`, `files mounted`, …). */
  changed: string[];
  /** What it found as the record says (`nginx running`, `app live on 1a2b3c4d5e6f`, …). */
  alreadyRight: string[];
  /** What is still not as the record says. */
  outOfLine: string[];
}

/** A converge of a site onto its record (repairSite; a deploy or rollback that could not switch back). */
export interface SiteRepairReport {
  /** What the record asks for: the state, the release, and what the proxies show. */
  target: { state: 'active' | 'suspended'; release: string; mode: 'active' | 'suspended' | 'maintenance' };
  hosts: Record<string, HostRepair>;
  /** The database put back on a failed deploy's snapshot, when the record said it must be. */
  database?: { snapshot: string; restored: boolean; error?: string };
  /** Per proxy that answers: `ok`, or why the site did not answer as its profile expects. */
  health: Record<string, string>;
  /** Every line still out of line, `<host>: <what>` (empty: the site is as its record says). */
  outOfLine: string[];
  /** Whether the repair changed anything. */
  changed: boolean;
}

export interface RepairSiteResult extends SiteRepairReport {
  siteId: string;
  /**
   * in-line: everything already was as the record says (nothing changed). repaired: it is now.
   * out-of-line: something still is not (see outOfLine); a failed site stays failed.
   */
  status: 'in-line' | 'repaired' | 'out-of-line';
  stateBefore: string;
  state: string;
  triggeredBy: string;
}
