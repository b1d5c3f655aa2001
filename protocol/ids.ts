import { z } from 'zod';

/**
 * The ids the processes agree on: workflow ids (made by whoever starts the workflow, so that a
 * second start of the same thing finds the first; a site's own, `site:<siteId>`, is in site.ts)
 * and backup ids. Pure: workflows, activities and clients share them.
 */

/**
 * The id of the deploy of a commit to a site (`deploy:<siteId>:<commit>`), started with
 * REJECT_DUPLICATE by the Git webhook: a notification that comes twice never deploys twice.
 */
export const deployWorkflowId = (siteId: string, commit: string) => `deploy:${siteId}:${commit}`;

/** The workflow id of a site's backup on a night: a re-run of the night never backs a site up twice. */
export const nightlyBackupId = (siteId: string, night: string) => `backup:${siteId}:nightly-${night}`;

/**
 * The id of the repair a fleet check starts for a site (`repair:<siteId>:fleet-check-<runId>`): a
 * retried start finds the same one; an operation id (client/operations.ts) like any other.
 */
export const fleetCheckRepairId = (siteId: string, checkRunId: string) =>
  `repair:${siteId}:fleet-check-${checkRunId}`;

/** The release a new site starts on, until its first deploy. */
export const INITIAL_RELEASE = 'initial';

/*
 * Backup ids: made by the workflow that takes the backup (deterministic: its start time and id),
 * checked by the activities that touch the directory named after it.
 */

/** `20260301T020000Z-k3x9q1`: sorts by time; nothing in it can become a path or shell syntax. */
export const BackupId = z
  .string()
  .regex(/^\d{8}T\d{6}Z-[0-9a-z]{6}$/, 'backup id must look like 20260301T020000Z-k3x9q1');

/** The UTC second `start` and 6 base-36 characters of a hash of `salt`. */
export function backupIdFor(start: Date, salt: string): string {
  const stamp = start.toISOString().replace(/[-:]/g, '').slice(0, 15) + 'Z';
  return `${stamp}-${(fnv1a(salt) % 36 ** 6).toString(36).padStart(6, '0')}`;
}

/** The time a backup id carries (ISO), or undefined if it is not one. */
export function timeOfBackupId(backupId: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/.exec(backupId);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.000Z` : undefined;
}

/** FNV-1a, 32 bits: a stable, dependency-free hash for names and offsets (not for security). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
