import { defineQuery } from '@temporalio/workflow';
import { z } from 'zod';
import { SiteId } from '../schema/site';

/**
 * The nightly backups (started by the `nightly-backups` Schedule, client/schedules.ts): input,
 * result and `progress` query. Each site's backup is a child with the id nightlyBackupId (ids.ts).
 */

export const NightlyBackupsInput = z.strictObject({
  /** Spread the backups over this many minutes from the start (0: all at once, as slots allow). */
  windowMinutes: z.number().int().min(0).max(720).default(240),
  /** Backups running at once per DB host. */
  perDbHost: z.number().int().min(1).max(16).default(2),
  /** Only these sites (default: every active site). */
  sites: z.array(SiteId).max(10_000).optional(),
  triggeredBy: z.string().max(100).optional(),
});
export type NightlyBackupsInput = z.input<typeof NightlyBackupsInput>;

export interface NightlyBackupsResult {
  /** The night (UTC date the run started), part of every backup's workflow id. */
  night: string;
  sites: number;
  succeeded: string[];
  /** Each failed backup: its workflow (open it in the Web UI) and the cause. */
  failed: { siteId: string; workflowId: string; error: string }[];
  /** Sites whose backup for this night had already completed, or is still running (a re-run). */
  alreadyDone: string[];
  /** Sites asked for by name (`sites`) that are not active: not backed up. */
  notActive: string[];
  /**
   * Sites not backed up tonight, and why: failed (ops must repair it first), suspended, being
   * provisioned or deprovisioned, or active but with no placement recorded. Only those asked for
   * when `sites` is given.
   */
  skipped: SkippedSite[];
  /**
   * Deprovisions' final backups (DB snapshots and files archives, `final-<time>`) older than
   * `before` removed from every DB and storage host (`host:path`), and the hosts where that failed.
   */
  finalBackups: { before: string; removed: string[]; problems: string[] };
  /** The most backups that ran at once on each DB host. */
  maxConcurrentPerDbHost: Record<string, number>;
}

export interface SkippedSite {
  siteId: string;
  state: string;
  reason: string;
}

export interface NightlyProgress {
  night: string;
  total: number;
  waiting: number;
  running: Record<string, string[]>;
  succeeded: number;
  failed: string[];
  alreadyDone: number;
  /** Sites not backed up tonight, and why (as in the result). */
  skipped: SkippedSite[];
}

export const nightlyProgressQuery = defineQuery<NightlyProgress>('progress');
