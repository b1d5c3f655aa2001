import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { SiteId, type SiteRecord } from '../../schema/site';
import { siteQuery, siteWorkflowId, type SiteView } from '../../protocol/site';
import { failure, FailureType } from '../errors';
import { parseInput } from '../input';

const ReadSiteRecordsInput = z.strictObject({ siteIds: z.array(SiteId).max(10_000) });
const ListPlacedSitesInput = z.strictObject({ siteIds: z.array(SiteId).max(10_000).optional() });
/** How long the fleet check waits for one site workflow's answer. */
const QUERY_DEADLINE_MS = 5000;

/** A site the nightly backs up. */
export interface ActiveSite {
  siteId: string;
  plan?: string;
  dbHost: string;
  storageHost: string;
}

/**
 * Every active site: visibility finds the running site workflows whose State is active, and each
 * is asked for its record (placement, plan). Read-only.
 */
async function activeSites(client: Client): Promise<ActiveSite[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND State = 'active'`,
  }))
    ids.push(w.workflowId);
  const out: ActiveSite[] = [];
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        const view = await client.workflow.getHandle(id).query(siteQuery);
        const r: SiteRecord = view.record;
        if (r.state !== 'active' || !r.placement || siteWorkflowId(r.siteId) !== id) continue;
        out.push({
          siteId: r.siteId,
          plan: r.spec?.plan,
          dbHost: r.placement.dbHost,
          storageHost: r.placement.storageHost,
        });
      }
    }),
  );
  return out.sort((a, b) => (a.siteId < b.siteId ? -1 : 1));
}

/**
 * The records of several sites, from each site's own workflow (`site` query): what a patch roll
 * plans with (every site's app servers). A site with no workflow is `null` (containers with its
 * label may still be on a host: the roll leaves their routes alone). Read-only; a decision that
 * must hold is re-made under the site's lock, from the record the lock grant carries. And the
 * active sites, from visibility and the same query: what the nightly backups back up.
 */
export function makeSiteRecordActivities(client: Client | undefined) {
  /** Each site's view (`site` query), 16 at a time; null for a site with no workflow. */
  async function siteViews(siteIds: string[], what: string): Promise<Record<string, SiteView | null>> {
    if (!client) throw failure(FailureType.InvalidInput, `this worker has no Temporal client for ${what}`);
    const out: Record<string, SiteView | null> = {};
    for (let i = 0; i < siteIds.length; i += 16)
      await Promise.all(
        siteIds.slice(i, i + 16).map(async (siteId) => {
          try {
            out[siteId] = await client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery);
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            out[siteId] = null;
          }
        }),
      );
    return out;
  }

  /** The running site workflows whose State is one of `states`, from visibility. */
  async function siteWorkflowIds(c: Client, states: string[]): Promise<string[]> {
    const ids: string[] = [];
    const which = states.map((s) => `State = '${s}'`).join(' OR ');
    for await (const w of c.workflow.list({
      query: `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND (${which})`,
    }))
      ids.push(w.workflowId);
    return ids;
  }

  return {
    /**
     * Every site on the fleet (active, suspended or failed, from visibility; or those of `siteIds`
     * alone), each with its record (the `site` query: the search attribute may lag) and the
     * operations holding or waiting for its lock: what the fleet check compares the hosts with. A
     * site workflow that does not answer within 5 s (no worker polls its task queue) is listed in
     * `unanswered` rather than failing the whole listing. Read-only.
     */
    async listPlacedSites(input: z.input<typeof ListPlacedSitesInput> = {}): Promise<{
      sites: { record: SiteRecord; operations: string[] }[];
      unanswered: string[];
    }> {
      const { siteIds } = parseInput(ListPlacedSitesInput, input, 'listPlacedSites');
      if (!client) throw failure(FailureType.InvalidInput, 'this worker has no Temporal client for sites');
      const ids =
        siteIds ??
        (await siteWorkflowIds(client, ['active', 'suspended', 'failed']))
          .filter((id) => id.startsWith('site:'))
          .map((id) => id.slice('site:'.length))
          .filter((id) => SiteId.safeParse(id).success);
      const sites: { record: SiteRecord; operations: string[] }[] = [];
      const unanswered: string[] = [];
      for (let i = 0; i < ids.length; i += 16)
        await Promise.all(
          ids.slice(i, i + 16).map(async (siteId) => {
            let view: SiteView;
            try {
              view = await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
                client.workflow.getHandle(siteWorkflowId(siteId)).query(siteQuery),
              );
            } catch (err) {
              if (err instanceof WorkflowNotFoundError) return;
              unanswered.push(siteId);
              return;
            }
            if (!['active', 'suspended', 'failed'].includes(view.record.state)) return;
            sites.push({
              record: view.record,
              operations: [
                ...(view.holder ? [view.holder.operation] : []),
                ...view.queue.map((q) => q.operation),
              ],
            });
          }),
        );
      sites.sort((a, b) => (a.record.siteId < b.record.siteId ? -1 : 1));
      return { sites, unanswered: unanswered.sort() };
    },

    async readSiteRecords(
      input: z.input<typeof ReadSiteRecordsInput>,
    ): Promise<Record<string, SiteRecord | null>> {
      const { siteIds } = parseInput(ReadSiteRecordsInput, input, 'readSiteRecords');
      const views = await siteViews(siteIds, 'site records');
      return Object.fromEntries(siteIds.map((id) => [id, views[id]?.record ?? null]));
    },

    /**
     * How many operations wait in each site's lock queue (`site` query; 0 for a site with no
     * workflow). A patch roll asks before it keeps a lock for its next batch: it keeps only those
     * nobody waits for. Read-only.
     */
    async siteLockWaiters(input: z.input<typeof ReadSiteRecordsInput>): Promise<Record<string, number>> {
      const { siteIds } = parseInput(ReadSiteRecordsInput, input, 'siteLockWaiters');
      const views = await siteViews(siteIds, 'site locks');
      return Object.fromEntries(siteIds.map((id) => [id, views[id]?.queue.length ?? 0]));
    },

    /** Every active site with its DB and storage host (what the nightly backups back up). Read-only. */
    async listActiveSites(): Promise<ActiveSite[]> {
      if (!client)
        throw failure(FailureType.InvalidInput, 'this worker has no Temporal client for active sites');
      return activeSites(client);
    },
  };
}
