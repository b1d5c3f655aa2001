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
  type SkippedSite,
} from '../protocol/nightlyBackups';
import { Operation, TriggeredBy } from '../protocol/searchAttributes';
import { backupSite } from './backupSite';
import { step1m } from './lib/activities';
import { ownMessage, parseWorkflowInput, rootMessage } from './lib/input';
import { FINAL_BACKUP_DAYS } from './lib/retention';

/** Where in the window a site's backup starts: the same minute every night, spread by its id's hash. */
export function offsetMs(siteId: string, windowMinutes: number): number {
  return windowMinutes > 0 ? fnv1a(siteId) % (windowMinutes * 60_000) : 0;
}

/**
 * Back up every active site, once a night (started by the `nightly-backups` Schedule):
 *   list the sites (the others are listed as skipped, with why) → each active site starts at its
 *   own offset in the window → at most `perDbHost` backups at once per DB host → each is a
 *   backupSite child workflow (`backup:<site>:nightly-<night>`, which takes the site's lock, so a
 *   site is never backed up twice at once) → remove the deprovisions' final backups older than
 *   FINAL_BACKUP_DAYS from every DB and storage host.
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

  const listed = await step1m.listSitesToBackUp();
  const all = listed.active;
  const sites = only ? all.filter((s) => only.includes(s.siteId)) : all;
  const skipped = only ? listed.skipped.filter((s) => only.includes(s.siteId)) : listed.skipped;
  const running = new Map<string, string[]>();
  const hostSlots = new Map<string, Slots>();
  const result: NightlyBackupsResult = {
    night,
    sites: sites.length,
    succeeded: [],
    failed: [],
    alreadyDone: [],
    notActive: only ? only.filter((id) => !all.some((s) => s.siteId === id)).sort() : [],
    skipped,
    finalBackups: { before: '', removed: [], problems: [] },
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
    skipped,
  });
  setHandler(nightlyProgressQuery, progress);
  const memo = () =>
    upsertMemo({
      summary:
        `nightly backups ${night}: ${result.succeeded.length}/${sites.length} done` +
        (result.alreadyDone.length ? `, ${result.alreadyDone.length} already done` : '') +
        (result.failed.length
          ? `, ${result.failed.length} FAILED: ${result.failed.map((f) => f.siteId).join(', ')}`
          : '') +
        (skipped.length ? `; ${skipped.length} not backed up: ${skippedSummary(skipped)}` : ''),
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

  result.finalBackups = await pruneFinalBackups();
  upsertMemo({ finalBackups: result.finalBackups });
  return result;
}

/** `3 failed (a, b, c), 1 suspended (d)`: by state, at most 10 names each. */
function skippedSummary(skipped: SkippedSite[]): string {
  const byState = new Map<string, string[]>();
  for (const s of skipped) byState.set(s.state, [...(byState.get(s.state) ?? []), s.siteId]);
  return [...byState]
    .map(
      ([state, ids]) =>
        `${ids.length} ${state} (${ids.slice(0, 10).join(', ')}${ids.length > 10 ? ', …' : ''})`,
    )
    .join(', ');
}

/**
 * The deprovisions' final backups older than FINAL_BACKUP_DAYS, off every DB and storage host. A
 * host where that fails is reported and the night still succeeds: the next night tries again.
 */
async function pruneFinalBackups(): Promise<NightlyBackupsResult['finalBackups']> {
  const before = new Date(Date.now() - FINAL_BACKUP_DAYS * 86_400_000).toISOString();
  const out: NightlyBackupsResult['finalBackups'] = { before, removed: [], problems: [] };
  try {
    const hosts = (await step1m.listHosts()).filter(
      (h) => h.roles.includes('db') || h.roles.includes('storage'),
    );
    await Promise.all(
      hosts.map(async ({ name }) => {
        try {
          const r = await step1m.pruneFinalBackups({ host: name, before });
          out.removed.push(...r.removed.map((path) => `${name}:${path}`));
        } catch (err) {
          out.problems.push(`${name}: ${rootMessage(err)}`);
        }
      }),
    );
  } catch (err) {
    out.problems.push(`the inventory: ${rootMessage(err)}`);
  }
  out.removed.sort();
  out.problems.sort();
  return out;
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
