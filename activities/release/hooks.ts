import { activityIO, withHeartbeat } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { excerpt } from '../site/health';
import { siteNames } from '../../schema/site';

const HOOK_TIMEOUT_MS = 30 * 60_000;

/**
 * Run the profile's postDeploy hooks, in order, in the site's live app container on `host`
 * (`docker exec`, argv as given: no shell unless the hook itself is one). The first that fails
 * stops the rest and fails the activity, non-retryably, with its exit code and the end of its
 * output. Not idempotent by nature (a hook migrates a database): the workflow runs this at most
 * once per deploy (no retries) and, if it fails or its outcome is unknown, restores the snapshot
 * it took before.
 */
export async function runPostDeployHooks(
  fleet: Fleet,
  i: { siteId: string; host: string; hooks: string[][] },
): Promise<{ ran: number }> {
  const container = siteNames(i.siteId).container('app');
  const io = activityIO();
  return withHeartbeat(async () => {
    for (const [n, hook] of i.hooks.entries()) {
      const r = await fleet.pool.exec(i.host, ['docker', 'exec', container, ...hook], {
        ...io,
        timeoutMs: HOOK_TIMEOUT_MS,
        check: false,
      });
      if (r.code !== 0)
        throw failure(
          FailureType.CommandFailed,
          `postDeploy hook ${n + 1} (${hook[0]}) exited ${r.code ?? r.signal} in ${container} on ${i.host}: ` +
            excerpt(r.stderr || r.stdout, 400),
          { host: i.host, hook: n + 1, code: r.code },
        );
    }
    return { ran: i.hooks.length };
  });
}
