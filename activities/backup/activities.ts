import { z } from 'zod';
import { hostName } from '../../schema/common';
import { Plan, SiteId, siteNames } from '../../schema/site';
import { dropDatabase, tableRowCounts } from '../db/admin';
import { failure, FailureType, isFailureOfType } from '../errors';
import type { Fleet } from '../fleet';
import { hostWithRole, parseInput } from '../input';
import { BackupId, timeOfBackupId } from '../../protocol/ids';
import { compareRowCounts, dumpSiteDatabase, loadDump } from './database';
import { archiveSiteFiles, restoreSiteFiles, siteFilesDigest, unpackAndDigest } from './files';
import { verifyDatabaseName } from './layout';
import { BackupKind, Manifest, type ManifestInput } from './manifest';
import { SshHostStore, type BackupStore } from './store';

/**
 * The backup activities: each takes one plain JSON object, validated here (InvalidInput naming
 * the field, never retried). Why each is safe to run twice is said on it or on what it calls.
 * Backups are kept on the site's storage host (SshHostStore); the DB password never leaves the DB
 * host: dumps and loads run there as root over the server's socket.
 */

const SiteBackup = z.strictObject({ siteId: SiteId, backupId: BackupId, storageHost: hostName });
const SiteBackupWithDb = SiteBackup.extend({ dbHost: hostName });
const VerifyInput = SiteBackupWithDb.extend({ at: z.iso.datetime() });
const SiteOnStorage = z.strictObject({ siteId: SiteId, storageHost: hostName });
const NewManifest = z.strictObject({
  siteId: SiteId,
  backupId: BackupId,
  kind: BackupKind,
  createdAt: z.iso.datetime(),
  workflowId: z.string().min(1).max(300),
  release: z.string().max(128).optional(),
  plan: Plan.optional(),
  dbHost: hostName,
  storageHost: hostName,
  database: Manifest.shape.database,
  files: Manifest.shape.files,
});

/** A backup as retention sees it. */
export interface ListedBackup {
  backupId: string;
  at: string;
  verified: boolean;
  kind?: string;
  /** Why it is not verified (no manifest, failed verification …). */
  note?: string;
}

export interface VerifyResult {
  verified: boolean;
  problems: string[];
  manifest: Manifest;
}

export function makeBackupActivities(fleet: Fleet, storeFor?: (storageHost: string) => BackupStore) {
  const pool = fleet.pool;
  const store = storeFor ?? ((host: string) => new SshHostStore(pool, host));
  const hosts = (i: { dbHost?: string; storageHost: string }) => {
    if (i.dbHost !== undefined) hostWithRole(fleet, i.dbHost, 'db');
    hostWithRole(fleet, i.storageHost, 'storage');
  };
  const manifestOf = async (siteId: string, storageHost: string, backupId: string) => {
    const m = await store(storageHost).getManifest(siteId, backupId);
    if (!m)
      throw failure(
        FailureType.Conflict,
        `backup ${backupId} of ${siteId} has no manifest on ${storageHost}`,
        {
          siteId,
          backupId,
        },
      );
    return m;
  };

  return {
    /**
     * Dump the site's database into the backup, streamed DB host → worker → storage host, with
     * row counts (see dumpSiteDatabase). Safe twice: read-only on the database, the artifact is
     * replaced whole.
     */
    async backupDatabase(input: z.input<typeof SiteBackupWithDb>) {
      const i = parseInput(SiteBackupWithDb, input, 'backupDatabase');
      hosts(i);
      return dumpSiteDatabase(pool, store(i.storageHost), i);
    },

    /** tar.gz of the site's files, made on the storage host. Safe twice (see archiveSiteFiles). */
    async backupFiles(input: z.input<typeof SiteBackup>) {
      const i = parseInput(SiteBackup, input, 'backupFiles');
      hosts(i);
      return archiveSiteFiles(pool, i);
    },

    /** Write the manifest of a new (not yet verified) backup. Safe twice: it is replaced whole. */
    async writeBackupManifest(input: z.input<typeof NewManifest>): Promise<Manifest> {
      const i = parseInput(NewManifest, input, 'writeBackupManifest');
      hosts(i);
      const manifest: ManifestInput = { version: 1, ...i, verified: false };
      const parsed = Manifest.parse(manifest);
      await store(i.storageHost).putManifest(parsed);
      return parsed;
    },

    /**
     * Prove the backup restores: checksums read back on the storage host, the dump loaded into a
     * scratch database on the DB host (the site's qm_verify_…, dropped afterwards) with every table
     * and row count as in the manifest, the files unpacked into scratch space with the manifest's counts.
     * The manifest then says verified true or false, with the problems found. A backup that does
     * not restore is a result (verified: false), not an error; hosts that cannot be reached are
     * errors (retried). Safe twice: the scratch is made afresh and removed, the manifest rewritten.
     */
    async verifyBackup(input: z.input<typeof VerifyInput>): Promise<VerifyResult> {
      const i = parseInput(VerifyInput, input, 'verifyBackup');
      hosts(i);
      const t0 = Date.now();
      const st = store(i.storageHost);
      const manifest = await manifestOf(i.siteId, i.storageHost, i.backupId);
      const problems: string[] = [];
      const sums = await st.check(i.siteId, i.backupId, {
        [manifest.database.file]: manifest.database.sha256,
        [manifest.files.file]: manifest.files.sha256,
      });
      for (const [name, state] of Object.entries(sums))
        if (state !== 'ok')
          problems.push(
            `${name}: ${state === 'missing' ? 'missing' : 'checksum does not match the manifest'}`,
          );

      let changedTablesRestored: Record<string, number> = {};
      let treeDigest: string | undefined;
      if (!problems.length) {
        const scratch = verifyDatabaseName(i.siteId);
        try {
          await loadDump(st, { ...i, db: scratch, sha256: manifest.database.sha256 });
          const compared = compareRowCounts(manifest.database, await tableRowCounts(pool, i.dbHost, scratch));
          problems.push(...compared.problems);
          changedTablesRestored = compared.changedTablesRestored;
        } catch (err) {
          if (!isBackupFault(err)) throw err;
          problems.push(`the dump does not load: ${(err as Error).message}`);
        } finally {
          await dropDatabase(pool, i.dbHost, scratch);
        }
        try {
          const tree = await unpackAndDigest(pool, { ...i, sha256: manifest.files.sha256 });
          if (tree.files !== manifest.files.files || tree.bytes !== manifest.files.fileBytes)
            problems.push(
              `the files unpack to ${tree.files} files of ${tree.bytes} bytes, the manifest says ${manifest.files.files} of ${manifest.files.fileBytes}`,
            );
          else treeDigest = tree.digest;
        } catch (err) {
          if (!isBackupFault(err)) throw err;
          problems.push(`the files do not unpack: ${(err as Error).message}`);
        }
      }
      const verified = problems.length === 0;
      const updated = Manifest.parse({
        ...manifest,
        files: { ...manifest.files, treeDigest },
        verified,
        verification: { at: i.at, ok: verified, problems, changedTablesRestored, ms: Date.now() - t0 },
      });
      await st.putManifest(updated);
      return { verified, problems, manifest: updated };
    },

    /**
     * The manifest of a backup fit to restore from: verified, and its artifacts still match their
     * checksums on the storage host (else Conflict, never retried: a tampered or damaged backup is
     * refused before anything is touched). Read-only.
     */
    async checkBackup(input: z.input<typeof SiteBackup>): Promise<Manifest> {
      const i = parseInput(SiteBackup, input, 'checkBackup');
      hosts(i);
      const manifest = await manifestOf(i.siteId, i.storageHost, i.backupId);
      if (!manifest.verified || !manifest.files.treeDigest)
        throw failure(
          FailureType.Conflict,
          `backup ${i.backupId} of ${i.siteId} is not verified${
            manifest.verification ? ` (${manifest.verification.problems.join('; ')})` : ''
          }: refusing to restore it`,
          { siteId: i.siteId, backupId: i.backupId },
        );
      const sums = await store(i.storageHost).check(i.siteId, i.backupId, {
        [manifest.database.file]: manifest.database.sha256,
        [manifest.files.file]: manifest.files.sha256,
      });
      const bad = Object.entries(sums).filter(([, s]) => s !== 'ok');
      if (bad.length)
        throw failure(
          FailureType.Conflict,
          `backup ${i.backupId} of ${i.siteId}: ${bad.map(([n, s]) => `${n} ${s === 'missing' ? 'is missing' : 'does not match its checksum'}`).join(', ')}: refusing to restore it`,
          { siteId: i.siteId, backupId: i.backupId, sums },
        );
      return manifest;
    },

    /** Make the site's database exactly the backup's dump. Safe twice (see loadDump). */
    async restoreBackupDatabase(input: z.input<typeof SiteBackupWithDb>) {
      const i = parseInput(SiteBackupWithDb, input, 'restoreBackupDatabase');
      hosts(i);
      const manifest = await manifestOf(i.siteId, i.storageHost, i.backupId);
      const db = siteNames(i.siteId).database;
      return loadDump(store(i.storageHost), { ...i, db, sha256: manifest.database.sha256 });
    },

    /** Make the site's files exactly the backup's archive. Safe twice (see restoreSiteFiles). */
    async restoreBackupFiles(input: z.input<typeof SiteBackup>) {
      const i = parseInput(SiteBackup, input, 'restoreBackupFiles');
      hosts(i);
      const manifest = await manifestOf(i.siteId, i.storageHost, i.backupId);
      return restoreSiteFiles(pool, { ...i, sha256: manifest.files.sha256 });
    },

    /**
     * After a restore: the site's tables and row counts are the manifest's, and its files tree has
     * the digest verification recorded. Problems are returned, not thrown. Read-only.
     */
    async checkRestoredSite(
      input: z.input<typeof SiteBackupWithDb>,
    ): Promise<{ ok: boolean; problems: string[] }> {
      const i = parseInput(SiteBackupWithDb, input, 'checkRestoredSite');
      hosts(i);
      const manifest = await manifestOf(i.siteId, i.storageHost, i.backupId);
      const counts = await tableRowCounts(pool, i.dbHost, siteNames(i.siteId).database);
      const { problems } = compareRowCounts(manifest.database, counts);
      const tree = await siteFilesDigest(pool, i);
      if (tree.digest !== manifest.files.treeDigest)
        problems.push(
          `the site's files (${tree.files} files, ${tree.bytes} bytes) differ from the backup's (${manifest.files.files} files, ${manifest.files.fileBytes} bytes)`,
        );
      return { ok: problems.length === 0, problems };
    },

    /** The site's backups on its storage host, newest first, as retention sees them. Read-only. */
    async listBackups(input: z.input<typeof SiteOnStorage>): Promise<ListedBackup[]> {
      const i = parseInput(SiteOnStorage, input, 'listBackups');
      hosts(i);
      const stored = await store(i.storageHost).list(i.siteId);
      return stored
        .map((b): ListedBackup => {
          if (b.manifest === undefined || b.manifest === 'invalid')
            return {
              backupId: b.backupId,
              at: timeOfBackupId(b.backupId) ?? b.mtime,
              verified: false,
              note: b.manifest ? 'manifest does not parse' : 'no manifest (never finished)',
            };
          const m = b.manifest;
          return {
            backupId: b.backupId,
            at: m.createdAt,
            verified: m.verified,
            kind: m.kind,
            note: m.verified
              ? undefined
              : m.verification
                ? m.verification.problems.join('; ')
                : 'not verified yet',
          };
        })
        .sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    },

    /** Remove one backup of the site. Safe twice: one already gone is `absent`. */
    async deleteBackup(
      input: z.input<typeof SiteBackup>,
    ): Promise<{ backupId: string; result: 'removed' | 'absent' }> {
      const i = parseInput(SiteBackup, input, 'deleteBackup');
      hosts(i);
      return { backupId: i.backupId, result: await store(i.storageHost).remove(i.siteId, i.backupId) };
    },
  };
}

/** A failure that says the backup itself is bad (a command on it exited non-zero, a checksum), not that a host is away. */
function isBackupFault(err: unknown): boolean {
  return isFailureOfType(err, FailureType.CommandFailed) || isFailureOfType(err, FailureType.Conflict);
}

export type BackupActivities = ReturnType<typeof makeBackupActivities>;
