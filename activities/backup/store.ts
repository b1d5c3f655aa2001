import { ApplicationFailure } from '@temporalio/common';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import {
  BackupExit,
  checkSumsArgv,
  commitArgv,
  listBackupsArgv,
  readArgv,
  receiveArgv,
  removeBackupArgv,
  writeSmallFileArgv,
} from './commands';
import { backupDir, MANIFEST, siteBackupsDir } from './layout';
import { Manifest } from './manifest';
import { relay, type RemoteCommand } from './relay';

/**
 * Where backups are kept, behind a small interface: the backup and restore activities only put,
 * get, check, list and remove. The one implementation today keeps them on the storage host over
 * SSH (SshHostStore); an object store would implement the same five verbs.
 */

export interface ArtifactInfo {
  bytes: number;
  sha256: string;
}

export interface StoredBackup {
  backupId: string;
  /** The directory's modification time (ISO), for backups without a manifest. */
  mtime: string;
  /** Absent: the backup never finished; `invalid`: a manifest that does not parse. */
  manifest?: Manifest | 'invalid';
}

export type SumCheck = Record<string, 'ok' | 'mismatch' | 'missing'>;

export interface BackupStore {
  /** Where a backup lives, for messages (`host1:/srv/qm/backups/acme/2026…`). */
  where(siteId: string, backupId: string): string;
  /**
   * Store a remote command's stdout as an artifact, streamed; it appears under `name` only once
   * whole and with the checksum the worker computed while streaming. Replaces an earlier one.
   */
  put(siteId: string, backupId: string, name: string, source: RemoteCommand): Promise<ArtifactInfo>;
  /** Stream an artifact into a remote command's stdin; size and SHA-256 of what was sent. */
  get(siteId: string, backupId: string, name: string, sink: RemoteCommand): Promise<ArtifactInfo>;
  /** Each artifact's checksum as read back from the store's own disk. */
  check(siteId: string, backupId: string, expected: Record<string, string>): Promise<SumCheck>;
  putManifest(manifest: Manifest): Promise<void>;
  getManifest(siteId: string, backupId: string): Promise<Manifest | undefined>;
  list(siteId: string): Promise<StoredBackup[]>;
  remove(siteId: string, backupId: string): Promise<'removed' | 'absent'>;
}

const QUICK_MS = 60_000;
/** Reading back a large artifact to check it. */
const CHECK_MS = 60 * 60_000;

export class SshHostStore implements BackupStore {
  constructor(
    private readonly pool: SshPool,
    readonly host: string,
  ) {}

  where(siteId: string, backupId: string): string {
    return `${this.host}:${backupDir(siteId, backupId)}`;
  }

  async put(siteId: string, backupId: string, name: string, source: RemoteCommand): Promise<ArtifactInfo> {
    const dir = backupDir(siteId, backupId);
    const r = await relay(this.pool, source, { host: this.host, argv: receiveArgv(dir, name) });
    const m = /^(\S+) ([0-9a-f]{64}) (\d+)$/m.exec(r.sink.stdout);
    if (!m)
      throw failure(FailureType.CommandFailed, `${this.host}: receiving ${name} printed no result`, {
        host: this.host,
        stdout: r.sink.stdout.slice(-300),
      });
    const [, tmp, sha256, bytes] = m;
    if (sha256 !== r.sha256 || Number(bytes) !== r.bytes)
      // the bytes that reached the disk are not those that left the source: never commit them
      throw failure(
        FailureType.CommandFailed,
        `${this.host}: ${name} arrived as ${bytes} bytes with SHA-256 ${sha256}, but ${r.bytes} bytes with ${r.sha256} were sent`,
        { host: this.host, name },
      );
    await this.pool.exec(this.host, commitArgv(dir, name, tmp!), { ...activityIO(), timeoutMs: QUICK_MS });
    return { bytes: r.bytes, sha256: r.sha256 };
  }

  async get(siteId: string, backupId: string, name: string, sink: RemoteCommand): Promise<ArtifactInfo> {
    const path = `${backupDir(siteId, backupId)}/${name}`;
    try {
      const r = await relay(this.pool, { host: this.host, argv: readArgv(path) }, sink);
      return { bytes: r.bytes, sha256: r.sha256 };
    } catch (err) {
      if (exitCodeOf(err) === BackupExit.Missing)
        throw failure(FailureType.Conflict, `${this.host} has no ${path}`, { host: this.host, path });
      throw err;
    }
  }

  async check(siteId: string, backupId: string, expected: Record<string, string>): Promise<SumCheck> {
    const r = await this.pool.exec(this.host, checkSumsArgv(backupDir(siteId, backupId), expected), {
      ...activityIO(),
      timeoutMs: CHECK_MS,
    });
    const out: SumCheck = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^(ok|mismatch|missing) (\S+) /.exec(line);
      if (m) out[m[2]!] = m[1] as SumCheck[string];
    }
    for (const name of Object.keys(expected)) out[name] ??= 'missing';
    return out;
  }

  async putManifest(manifest: Manifest): Promise<void> {
    const parsed = Manifest.parse(manifest);
    await this.pool.exec(this.host, writeSmallFileArgv(backupDir(parsed.siteId, parsed.backupId), MANIFEST), {
      ...activityIO(),
      stdin: JSON.stringify(parsed, null, 2) + '\n',
      timeoutMs: QUICK_MS,
    });
  }

  async getManifest(siteId: string, backupId: string): Promise<Manifest | undefined> {
    const r = await this.pool.exec(this.host, readArgv(`${backupDir(siteId, backupId)}/${MANIFEST}`), {
      ...activityIO(),
      timeoutMs: QUICK_MS,
      check: false,
    });
    if (r.code === BackupExit.Missing) return undefined;
    if (r.code !== 0)
      throw failure(FailureType.CommandFailed, `${this.host}: reading the manifest of ${backupId} failed`, {
        host: this.host,
        stderr: r.stderr.slice(-500),
      });
    return parseManifest(r.stdout, this.host, `${this.where(siteId, backupId)}/${MANIFEST}`);
  }

  async list(siteId: string): Promise<StoredBackup[]> {
    const r = await this.pool.exec(this.host, listBackupsArgv(siteBackupsDir(siteId)), {
      ...activityIO(),
      timeoutMs: QUICK_MS,
    });
    const out: StoredBackup[] = [];
    for (const line of r.stdout.split('\n')) {
      const m = /^(\S+) (\d+) (\S+)$/.exec(line);
      if (!m) continue;
      const [, backupId, mtime, encoded] = m;
      let manifest: StoredBackup['manifest'];
      if (encoded !== '-') {
        try {
          manifest = parseManifest(Buffer.from(encoded!, 'base64').toString('utf8'), this.host, backupId!);
        } catch {
          manifest = 'invalid';
        }
      }
      out.push({ backupId: backupId!, mtime: new Date(Number(mtime) * 1000).toISOString(), manifest });
    }
    return out;
  }

  async remove(siteId: string, backupId: string): Promise<'removed' | 'absent'> {
    const r = await this.pool.exec(this.host, removeBackupArgv(backupDir(siteId, backupId)), {
      ...activityIO(),
      timeoutMs: 10 * QUICK_MS,
    });
    return r.stdout.trim() === 'removed' ? 'removed' : 'absent';
  }
}

function parseManifest(text: string, host: string, where: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw failure(FailureType.Conflict, `${where} is not JSON`, { host });
  }
  const r = Manifest.safeParse(json);
  if (!r.success)
    throw failure(FailureType.Conflict, `${where} is not a valid manifest: ${r.error.issues[0]?.message}`, {
      host,
    });
  return r.data;
}

/** The exit code a CommandFailed carries in its details. */
export function exitCodeOf(err: unknown): number | undefined {
  if (!(err instanceof ApplicationFailure)) return undefined;
  const d = err.details?.[0] as { code?: unknown } | undefined;
  return typeof d?.code === 'number' ? d.code : undefined;
}
