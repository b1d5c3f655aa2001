import { z } from 'zod';
import { hostName, slug } from '../../schema/common';
import { SiteId } from '../../schema/site';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { hostWithRole, parseInput } from '../input';
import type { ExecResult } from '../ssh/pool';
import {
  archivePath,
  authorizeArgv,
  authorizedKeyLine,
  ensureFilesArgv,
  keyscanArgv,
  knownHostsArgv,
  knownHostsName,
  mountArgv,
  parseKeyscan,
  parseRemoveFiles,
  pinnedKnownHosts,
  removeFilesArgv,
  sshfsArgv,
  storageKeyArgv,
  StorageExit,
  storagePaths,
  unmountArgv,
} from './commands';
import { isDirectoryArgv } from '../site/commands';

/**
 * The site files: "one place that all the site's app servers see". They live on the storage host
 * in /srv/qm/files/<site>, and every app host of the site mounts them with sshfs at
 * /srv/qm/sites/<site>/files, which the site's containers bind-mount. The app host logs in to the
 * storage host with a key of its own (made there, never copied anywhere), which the storage host
 * allows to speak SFTP and nothing else; the storage host's key is pinned on the app host only
 * after its fingerprint matched the inventory's pin.
 */

const SiteOnStorage = z.strictObject({ siteId: SiteId, storageHost: hostName });
const RemoveFilesInput = SiteOnStorage.extend({
  /** Archive the files to /srv/qm/archive/<site>/<archiveName>.tar.gz before removing them. */
  archiveName: slug('archive name', 100).optional(),
  /** Only archive them (a final backup while the site still runs); removed by a later call. */
  keepFiles: z.boolean().default(false),
}).refine((i) => !i.keepFiles || i.archiveName !== undefined, {
  message: 'keepFiles without archiveName does nothing',
  path: ['keepFiles'],
});
const MountInput = z.strictObject({
  siteId: SiteId,
  host: hostName,
  storageHost: hostName,
  /**
   * A mount point holding files (written while nothing was mounted there) is moved aside to
   * /srv/qm/set-aside/<site>/ and the mount made, instead of refused: what a repair does after a
   * restart, when the containers wrote into the bare directory.
   */
  setAside: z.boolean().default(false),
});
const UnmountInput = z.strictObject({ siteId: SiteId, host: hostName });

/** The login the app hosts' sshfs uses on the storage host (whose /root/.ssh authorizes them). */
const STORAGE_USER = 'root';
const QUICK_MS = 60_000;
/** An archive of a large site takes a while (the exec heartbeats meanwhile). */
const ARCHIVE_MS = 4 * 60 * 60_000;

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .pop() ?? ''
  ).slice(0, 400);
}

export function makeStorageActivities(fleet: Fleet) {
  const pool = fleet.pool;
  const run = (
    host: string,
    argv: string[],
    o: { stdin?: string; timeoutMs?: number; check?: boolean } = {},
  ) => pool.exec(host, argv, { ...activityIO(), timeoutMs: QUICK_MS, ...o });

  return {
    /**
     * Create the site's files directory on the storage host. Safe twice: an existing directory
     * (and what is in it) is left as it is and reported `existing`.
     */
    async ensureSiteFiles(
      input: z.input<typeof SiteOnStorage>,
    ): Promise<{ path: string; action: 'created' | 'existing' }> {
      const { siteId, storageHost } = parseInput(SiteOnStorage, input, 'ensureSiteFiles');
      hostWithRole(fleet, storageHost, 'storage');
      const r = await run(storageHost, ensureFilesArgv(siteId));
      return {
        path: storagePaths(siteId).files,
        action: r.stdout.includes('created') ? 'created' : 'existing',
      };
    },

    /**
     * Remove the site's files from the storage host, archiving them first if `archiveName` is
     * given (tar.gz, written aside and linked into place, root-only). Safe twice: an archive of
     * that name already there is kept as it is (a retry must not replace it with what a cut-short
     * removal left), and files already gone are `absent`. With `keepFiles` the files are only
     * archived (`kept`). The caller unmounts them everywhere before removing them.
     */
    async removeSiteFiles(input: z.input<typeof RemoveFilesInput>): Promise<{
      path: string;
      files: 'removed' | 'kept' | 'absent';
      archive?: { path: string; action: 'created' | 'existing'; sha256: string; bytes: number };
    }> {
      const { siteId, storageHost, archiveName, keepFiles } = parseInput(
        RemoveFilesInput,
        input,
        'removeSiteFiles',
      );
      hostWithRole(fleet, storageHost, 'storage');
      const r = await run(storageHost, removeFilesArgv(siteId, archiveName, keepFiles), {
        timeoutMs: ARCHIVE_MS,
      });
      let outcome;
      try {
        outcome = parseRemoveFiles(r.stdout);
      } catch (err) {
        throw failure(
          FailureType.CommandFailed,
          `${storageHost}: removing the files of ${siteId}: ${(err as Error).message}`,
          {
            host: storageHost,
            siteId,
          },
        );
      }
      return {
        path: storagePaths(siteId).files,
        files: outcome.files,
        archive:
          outcome.archive && archiveName !== undefined
            ? { path: archivePath(siteId, archiveName), ...outcome.archive }
            : undefined,
      };
    },

    /**
     * Mount the site's files on an app host. Every step converges, so the whole is safe twice:
     * the app host's key is made only if absent; its authorized_keys line on the storage host is
     * added only if not there already (an older line for the same key is replaced); the pinned
     * known_hosts lines are rewritten only if they differ; and `mountpoint -q` decides whether to
     * mount at all (a live mount from the same place is `unchanged`, a dead one is detached and
     * mounted again). A storage host presenting a key that is not pinned in the inventory is
     * HostKeyMismatch (never retried) and nothing is mounted. A mount point that holds files is
     * refused (Conflict), unless `setAside`: they are then moved aside (`setAside`: where) first; a
     * retry finds the mount made, or an empty directory.
     */
    async mountSiteFiles(input: z.input<typeof MountInput>): Promise<{
      mountPoint: string;
      source: string;
      action: 'mounted' | 'remounted' | 'unchanged';
      setAside?: string;
    }> {
      const { siteId, host, storageHost, setAside } = parseInput(MountInput, input, 'mountSiteFiles');
      hostWithRole(fleet, host, 'app');
      const storage = hostWithRole(fleet, storageHost, 'storage');
      const paths = storagePaths(siteId);

      const dir = await run(storageHost, isDirectoryArgv(paths.files), { check: false });
      if (dir.code !== 0)
        throw failure(
          FailureType.Conflict,
          `${storageHost} has no ${paths.files}: ensureSiteFiles must run before mountSiteFiles`,
          { host: storageHost, siteId },
        );

      // the app host's own key, authorized on the storage host for SFTP only
      const key = await run(host, storageKeyArgv(host));
      let authorized;
      try {
        authorized = authorizedKeyLine(key.stdout.split('\n').slice(1).join('\n'), host);
      } catch (err) {
        throw failure(FailureType.CommandFailed, `${host}: its storage key: ${(err as Error).message}`, {
          host,
        });
      }
      await run(storageHost, authorizeArgv(authorized));

      // the storage host's key as the app host sees it, pinned only if the inventory pins it
      const scan = await run(host, keyscanArgv(storage.address, storage.port), { check: false });
      const scanned = parseKeyscan(scan.stdout);
      if (!scanned.length)
        throw failure(
          FailureType.HostUnreachable,
          `${host} got no host key from ${storageHost} (${storage.address}:${storage.port}): ${lastLine(scan.stderr) || 'no answer'}`,
          { host, storageHost },
        );
      const name = knownHostsName(storage.address, storage.port);
      const pinned = pinnedKnownHosts(name, scanned, storage.hostKeys);
      if (!pinned.length)
        throw failure(
          FailureType.HostKeyMismatch,
          `${host} sees ${storageHost} (${storage.address}:${storage.port}) with key(s) ` +
            `${scanned.map((k) => k.fingerprint).join(', ')}, none of them pinned in the inventory: refusing to mount from it`,
          { host, storageHost, presented: scanned.map((k) => k.fingerprint), pinned: storage.hostKeys },
        );
      await run(host, knownHostsArgv(name), { stdin: pinned.join('\n') });

      const sshfs = sshfsArgv({
        user: STORAGE_USER,
        address: storage.address,
        port: storage.port,
        remotePath: paths.files,
        mountPoint: paths.mount,
      });
      const source = sshfs[sshfs.length - 2]!;
      const r = await run(host, mountArgv(siteId, source, sshfs, { setAside }), { check: false });
      if (r.code === StorageExit.OtherMount || r.code === StorageExit.NotEmpty)
        throw failure(FailureType.Conflict, `${host}: ${lastLine(r.stderr)}`, {
          host,
          siteId,
          mountPoint: paths.mount,
        });
      if (r.code !== 0) throw mountFailed(host, siteId, r);
      const action = lastLine(r.stdout) as 'mounted' | 'remounted' | 'unchanged';
      const aside = /^set aside (\S+)$/m.exec(r.stdout)?.[1];
      return { mountPoint: paths.mount, source, action, ...(aside ? { setAside: aside } : {}) };
    },

    /**
     * Unmount the site's files from a host (fusermount -u; lazily if busy, so the mount goes away
     * once its last user lets go) and remove the then empty mount point. Safe twice: a host where
     * it is not mounted is `absent`. A mount point that still holds files after unmounting (files
     * written there while nothing was mounted) is kept and reported, never deleted.
     */
    async unmountSiteFiles(
      input: z.input<typeof UnmountInput>,
    ): Promise<{ mountPoint: string; result: 'unmounted' | 'lazy' | 'absent'; dirRemoved: boolean }> {
      const { siteId, host } = parseInput(UnmountInput, input, 'unmountSiteFiles');
      pool.host(host);
      const r = await run(host, unmountArgv(siteId));
      const lines = r.stdout.trim().split('\n');
      return {
        mountPoint: storagePaths(siteId).mount,
        result: lines[0] as 'unmounted' | 'lazy' | 'absent',
        dirRemoved: lines.includes('dir removed'),
      };
    },
  };
}

function mountFailed(host: string, siteId: string, r: ExecResult) {
  return failure(
    FailureType.CommandFailed,
    `${host}: mounting the files of ${siteId} failed (exit ${r.code ?? 'by signal ' + r.signal}): ${lastLine(r.stderr)}`,
    { host, siteId, code: r.code, stderr: r.stderr.slice(-2000) },
  );
}

export type StorageActivities = ReturnType<typeof makeStorageActivities>;
