import { PassThrough } from 'node:stream';
import { activityIO, withHeartbeat } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { archiveArgv } from '../git/commands';
import { hasReleaseArgv, RELEASE_PRESENT, unpackReleaseArgv } from './commands';

const FETCH_TIMEOUT_MS = 30 * 60_000;

/**
 * Put the commit's tree in /srv/qm/releases/<site>/<commit> on an app host: `git archive` on the
 * Git host, streamed through the worker (no copy on disk here, no credentials for the Git host on
 * the app hosts) into `tar -x` on the app host. Safe twice: a release folder that exists is
 * complete (it is only ever created by renaming a fully unpacked temporary folder) and is kept as
 * it is, without fetching; an unpack cut short leaves only a temporary folder, removed on exit (or
 * by pruning, if the shell was killed).
 */
export async function fetchRelease(
  fleet: Fleet,
  i: { siteId: string; host: string; gitHost: string; repo: string; commit: string },
): Promise<{ result: 'created' | 'existing' }> {
  const io = activityIO();
  const present = await fleet.pool.exec(i.host, hasReleaseArgv(i.siteId, i.commit), {
    ...io,
    timeoutMs: 60_000,
    check: false,
  });
  if (present.code === RELEASE_PRESENT) return { result: 'existing' };

  return withHeartbeat(async () => {
    const pipe = new PassThrough({ highWaterMark: 1 << 20 });
    const archive = fleet.pool
      .exec(i.gitHost, archiveArgv(i.repo, i.commit), { ...io, stdout: pipe, timeoutMs: FETCH_TIMEOUT_MS })
      .then(
        (r) => {
          pipe.end();
          return r;
        },
        (err: unknown) => {
          pipe.destroy(err instanceof Error ? err : new Error(String(err)));
          throw err;
        },
      );
    const unpack = fleet.pool.exec(i.host, unpackReleaseArgv(i.siteId, i.commit), {
      ...io,
      stdin: pipe,
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    const [a, u] = await Promise.allSettled([archive, unpack]);
    // the archive's failure is the cause (a missing commit); the unpack's then only says "truncated"
    if (a.status === 'rejected')
      throw failure(
        FailureType.CommandFailed,
        `git archive of ${i.commit} from ${i.repo} on ${i.gitHost} failed: ${(a.reason as Error).message}`,
        { host: i.gitHost, repo: i.repo, commit: i.commit },
      );
    if (u.status === 'rejected') throw u.reason;
    const result = u.value.stdout.trim() === 'existing' ? 'existing' : 'created';
    return { result };
  });
}
