import {
  executeChild,
  ParentClosePolicy,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { fnv1a, nightlyBackupId } from '../protocol/ids';
import {
  NightlyBackupsInput,
  nightlyProgressQuery,
  type NightlyBackupsResult,
  type NightlyProgress,
} from '../protocol/nightlyBackups';
import { Operation, TriggeredBy } from '../protocol/searchAttributes';
import { backupSite } from './backupSite';
import { step1m } from './lib/activities';
import { ownMessage, parseWorkflowInput } from './lib/input';

/** Where in the window a site's backup starts: the same minute every night, spread by its id's hash. */
export function offsetMs(siteId: string, windowMinutes: number): number {
  return windowMinutes > 0 ? fnv1a(siteId) % (windowMinutes * 60_000) : 0;
}

/**
 * Back up every active site, once a night (started by the `nightly-backups` Schedule):
 *   list the active sites → each starts at its own offset in the window → at most `perDbHost`
 *   backups at once per DB host → each is a backupSite child workflow (`backup:<site>:nightly-<night>`,
 *   which takes the site's lock, so a site is never backed up twice at once).
 * A failed backup is its own failed workflow in the Web UI, and is listed in this one's result and
 * memo; the run goes on with the other sites. Run twice the same night, sites already backed up
 * (or being backed up) are skipped and failed ones are tried again.
 */
export async function nightlyBackups(input: NightlyBackupsInput = {}): Promise<NightlyBackupsResult> {
  const {
    windowMinutes,
    perDbHost,
    sites: only,
    triggeredBy,
  } = parseWorkflowInput(NightlyBackupsInput, input, 'nightlyBackups input');
  const info = workflowInfo();
  const night = info.startTime.toISOString().slice(0, 10);
  upsertSearchAttributes([
    { key: Operation, value: 'nightly-backups' },
    { key: TriggeredBy, value: triggeredBy ?? 'ui' },
  ]);

  const all = await step1m.listActiveSites();
  const sites = only ? all.filter((s) => only.includes(s.siteId)) : all;
  const running = new Map<string, string[]>();
  const hostSlots = new Map<string, Slots>();
  const result: NightlyBackupsResult = {
    night,
    sites: sites.length,
    succeeded: [],
    failed: [],
    alreadyDone: [],
    notActive: only ? only.filter((id) => !all.some((s) => s.siteId === id)).sort() : [],
    maxConcurrentPerDbHost: {},
  };
  const progress = (): NightlyProgress => ({
    night,
    total: sites.length,
    waiting:
      sites.length -
      result.succeeded.length -
      result.failed.length -
      result.alreadyDone.length -
      [...running.values()].reduce((n, r) => n + r.length, 0),
    running: Object.fromEntries(running),
    succeeded: result.succeeded.length,
    failed: result.failed.map((f) => f.siteId),
    alreadyDone: result.alreadyDone.length,
  });
  setHandler(nightlyProgressQuery, progress);
  const memo = () =>
    upsertMemo({
      summary:
        `nightly backups ${night}: ${result.succeeded.length}/${sites.length} done` +
        (result.alreadyDone.length ? `, ${result.alreadyDone.length} already done` : '') +
        (result.failed.length
          ? `, ${result.failed.length} FAILED: ${result.failed.map((f) => f.siteId).join(', ')}`
          : ''),
    });
  memo();

  const started = Date.now();
  await Promise.all(
    sites.map(async ({ siteId, dbHost }) => {
      const wait = started + offsetMs(siteId, windowMinutes) - Date.now();
      if (wait > 0) await sleep(wait);
      let slots = hostSlots.get(dbHost);
      if (!slots) hostSlots.set(dbHost, (slots = new Slots(perDbHost)));
      running.set(dbHost, slots.active);
      await slots.take(siteId);
      result.maxConcurrentPerDbHost[dbHost] = Math.max(
        result.maxConcurrentPerDbHost[dbHost] ?? 0,
        slots.active.length,
      );
      const workflowId = nightlyBackupId(siteId, night);
      try {
        await executeChild(backupSite, {
          workflowId,
          args: [{ siteId, kind: 'scheduled', triggeredBy: `schedule:${info.workflowId}` }],
          // completed tonight: skip; failed tonight: try again
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
          // a backup under way finishes (and releases its site's lock) even if this run is stopped
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
        result.succeeded.push(siteId);
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) result.alreadyDone.push(siteId);
        else result.failed.push({ siteId, workflowId, error: ownMessage(err) });
      } finally {
        slots.release(siteId);
        memo();
      }
    }),
  );
  result.succeeded.sort();
  result.alreadyDone.sort();
  result.failed.sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
  return result;
}

/**
 * A DB host's backup slots, handed over first come first served. A freed slot goes straight to the
 * next waiter (not to whoever re-checks a condition first: several conditions can unblock in one
 * activation, which would overrun the bound).
 */
class Slots {
  readonly active: string[] = [];
  private readonly waiting: { siteId: string; grant: () => void }[] = [];
  constructor(private readonly limit: number) {}

  take(siteId: string): Promise<void> {
    if (this.active.length < this.limit) {
      this.active.push(siteId);
      return Promise.resolve();
    }
    return new Promise((grant) => this.waiting.push({ siteId, grant }));
  }

  release(siteId: string): void {
    this.active.splice(this.active.indexOf(siteId), 1);
    const next = this.waiting.shift();
    if (next) {
      this.active.push(next.siteId);
      next.grant();
    }
  }
}
