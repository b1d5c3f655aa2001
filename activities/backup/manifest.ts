import { z } from 'zod';
import { SiteId } from '../../schema/site';
import { BackupId } from '../../protocol/ids';

/**
 * manifest.json, beside a backup's artifacts: what was backed up, when, from where, and how to
 * tell that a copy is whole (sizes, SHA-256) and complete (row counts per table). `verified` is
 * set only after the backup was restored into scratch space and matched; until then (or if it did
 * not match) the backup does not count as good.
 */

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 hex digits');
const Count = z.number().int().min(0);

export const BackupKind = z.enum(['scheduled', 'on-demand', 'safety']);
export type BackupKind = z.infer<typeof BackupKind>;

export const DatabaseArtifact = z.strictObject({
  file: z.string(),
  bytes: Count,
  sha256: Sha256,
  /**
   * Exact row count of every table whose count was the same in consistent reads just before and
   * just after the dump (so the dump, read in between, holds exactly that many rows).
   */
  rowCounts: z.record(z.string(), Count),
  /**
   * Tables written while the dump ran (their counts differ before and after; null: the table did
   * not exist then). Their restored count is reported, not compared.
   */
  changedDuringDump: z.record(
    z.string(),
    z.strictObject({ before: Count.nullable(), after: Count.nullable() }),
  ),
});
export type DatabaseArtifact = z.infer<typeof DatabaseArtifact>;

export const FilesArtifact = z.strictObject({
  file: z.string(),
  bytes: Count,
  sha256: Sha256,
  /** Entries in the archive (directories included), regular files, and their bytes (from tar's index). */
  entries: Count,
  files: Count,
  fileBytes: Count,
  /** Digest of the tree the archive extracts to (set by verification; a restore must end with it). */
  treeDigest: Sha256.optional(),
});
export type FilesArtifact = z.infer<typeof FilesArtifact>;

export const Verification = z.strictObject({
  at: z.iso.datetime(),
  ok: z.boolean(),
  problems: z.array(z.string()),
  /** Restored row counts of the tables written during the dump (information, not compared). */
  changedTablesRestored: z.record(z.string(), Count).default({}),
  ms: Count,
});
export type Verification = z.infer<typeof Verification>;

export const Manifest = z.strictObject({
  version: z.literal(1),
  siteId: SiteId,
  backupId: BackupId,
  kind: BackupKind,
  /** When the backup started (the workflow's time). */
  createdAt: z.iso.datetime(),
  /** The workflow that took it. */
  workflowId: z.string(),
  release: z.string().optional(),
  plan: z.string().optional(),
  dbHost: z.string(),
  storageHost: z.string(),
  database: DatabaseArtifact,
  files: FilesArtifact,
  verified: z.boolean(),
  verification: Verification.optional(),
});
export type Manifest = z.infer<typeof Manifest>;
export type ManifestInput = z.input<typeof Manifest>;
