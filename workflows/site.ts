import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { SiteRecord } from '../schema/site';
import { status30s } from './lib/activities';
import {
  CustomerId,
  Hosts,
  LastGoodBackup,
  Operation,
  Release,
  SiteId,
  State,
} from '../protocol/searchAttributes';
import {
  lockGrantedSignal,
  releaseLockSignal,
  requestLockSignal,
  sameHolder,
  siteQuery,
  updateRecordSignal,
  type LockHolder,
  type SiteView,
  type SiteWorkflowInput,
} from '../protocol/site';

/** While a lock is held this long without news, check that its holder still runs. */
const HOLDER_CHECK = '2 minutes';
const HISTORY_LIMIT = 5000;

/**
 * One long-running workflow per site (`site:<siteId>`), the site's single source of truth:
 * - its record (spec, placement, state, release), set by the operations that change it and shown
 *   to ops as search attributes (SiteId, CustomerId, State, Release, Hosts);
 * - its lock: operations (provision, deploy, backup, suspend, …) ask for it and run one at a time,
 *   in the order they asked; a waiting operation shows in this workflow's `site` query;
 * - it continues as new to keep its history short, and ends after the site is deleted.
 * Why a lock owner rather than running operations as its children: every operation stays an
 * ordinary workflow that ops can start from the Web UI, the API or a Schedule, and still queues.
 */
export async function site(input: SiteWorkflowInput): Promise<SiteRecord> {
  const view: SiteView = input.carried ?? { record: { siteId: input.siteId, state: 'new' }, queue: [] };
  const now = () => new Date().toISOString();
  /** Set when the holder asks again (its request activity was retried): the grant is re-sent. */
  let regrant = false;

  setHandler(siteQuery, () => view);
  setHandler(requestLockSignal, (who) => {
    if (sameHolder(view.holder, who)) {
      regrant = true; // the request was repeated (an activity retry): send the grant again
      return;
    }
    if (!view.queue.some((q) => sameHolder(q, who))) view.queue.push({ ...who, since: now() });
  });
  setHandler(releaseLockSignal, (who) => {
    if (sameHolder(view.holder, who)) view.holder = undefined;
    view.queue = view.queue.filter((q) => !sameHolder(q, who));
  });
  setHandler(updateRecordSignal, ({ holder, patch }) => {
    if (!sameHolder(view.holder, holder)) return; // a stale operation may not change the record
    view.record = { ...view.record, ...patch, siteId: view.record.siteId };
    publish(view.record);
  });
  publish(view.record);

  for (;;) {
    await condition(() => view.queue.length > 0 || (view.record.state === 'deleted' && !view.holder));
    if (view.record.state === 'deleted' && !view.holder && view.queue.length === 0) return view.record;

    const next = view.queue.shift()!;
    view.holder = { ...next, since: now() };
    upsertSearchAttributes([{ key: Operation, value: next.operation }]);
    if (!(await grant(view.holder, view.record))) {
      view.holder = undefined; // it is gone: next in line
      continue;
    }
    // Wait for the release; now and then make sure the holder has not died without releasing.
    const holding = view.holder;
    for (;;) {
      const released = await condition(() => !sameHolder(view.holder, holding) || regrant, HOLDER_CHECK);
      if (regrant) {
        regrant = false;
        await grant(holding, view.record);
        continue;
      }
      if (released) break;
      const status = await status30s.workflowStatus({ workflowId: holding.workflowId, runId: holding.runId });
      if (status !== 'RUNNING') {
        view.holder = undefined;
        break;
      }
    }
    upsertSearchAttributes([{ key: Operation, value: 'idle' }]);

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_LIMIT) {
      await continueAsNew<typeof site>({ siteId: input.siteId, carried: view });
    }
  }
}

async function grant(holder: LockHolder, record: SiteRecord): Promise<boolean> {
  try {
    await getExternalWorkflowHandle(holder.workflowId, holder.runId).signal(lockGrantedSignal, record);
    return true;
  } catch {
    return false; // the operation ended (cancelled, terminated) before its turn
  }
}

function publish(record: SiteRecord) {
  const hosts = record.placement
    ? [...new Set([...record.placement.appHosts, record.placement.dbHost, record.placement.storageHost])]
    : [];
  upsertSearchAttributes([
    { key: SiteId, value: record.siteId },
    { key: State, value: record.state },
    { key: CustomerId, value: record.customerId ?? null },
    { key: Release, value: record.release ?? null },
    { key: Hosts, value: hosts },
    { key: LastGoodBackup, value: record.lastGoodBackup ? new Date(record.lastGoodBackup.at) : null },
  ]);
  const f = record.failure;
  upsertMemo({
    summary: `site ${record.siteId}: ${record.state}${record.release ? `, release ${record.release}` : ''}${
      hosts.length ? ` on ${hosts.join(', ')}` : ''
    }${f ? `; ${f.operation} failed at "${f.step}"${f.host ? ` on ${f.host}` : ''}: ${f.cause} (${f.outOfLine.length} out of line)` : ''}`,
  });
}
