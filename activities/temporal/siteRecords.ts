import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { SiteId, type SiteRecord } from '../../schema/site';
import { siteQuery, siteWorkflowId, type SiteView } from '../../protocol/site';
import { failure, FailureType } from '../errors';
import { parseInput } from '../input';

const ReadSiteRecordsInput = z.strictObject({ siteIds: z.array(SiteId).max(10_000) });

/** A site the nightly backs up. */
export interface ActiveSite {
  siteId: string;
  plan?: string;
  dbHost: string;
  storageHost: string;
}

/** A site the nightly does not back up, and why (its state, or no placement). */
export interface SkippedSite {
  siteId: string;
  state: string;
  reason: string;
}

/** Why a site in this state is not backed up by the nightly run (active sites are). */
const NOT_BACKED_UP: Record<string, string> = {
  new: 'never provisioned',
  provisioning: 'being provisioned',
  suspended: 'suspended: its data does not change until it is resumed (back it up on demand if needed)',
  deprovisioning: 'being deprovisioned',
  failed: 'failed: ops must repair it first (an undo or rollback did not finish)',
};

/**
 * Every site that has a running site workflow, split into those the nightly backs up (active, with
 * a placement) and those it skips, with why: visibility finds the site workflows, and each is
 * asked for its record (state, placement, plan), 8 at a time. Read-only.
 */
async function sitesToBackUp(client: Client): Promise<{ active: ActiveSite[]; skipped: SkippedSite[] }> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'site' AND ExecutionStatus = 'Running'`,
  }))
    ids.push(w.workflowId);
  const active: ActiveSite[] = [];
  const skipped: SkippedSite[] = [];
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        let view: SiteView;
        try {
          view = await client.workflow.getHandle(id).query(siteQuery);
        } catch (err) {
          // it ended between the listing and the query (a site deleted meanwhile): nothing to back up
          if (err instanceof WorkflowNotFoundError) continue;
          // one site whose workflow does not answer (no worker polls its task queue) must not
          // cost every other site its night: it is listed as skipped, with why
          skipped.push({
            siteId: id.replace(/^site:/, ''),
            state: 'unknown',
            reason: `its site workflow did not answer: ${err instanceof Error ? err.message : String(err)}`,
          });
          continue;
        }
        const r: SiteRecord = view.record;
        if (siteWorkflowId(r.siteId) !== id) continue;
        if (r.state === 'deleted') continue;
        if (r.state !== 'active') {
          skipped.push({ siteId: r.siteId, state: r.state, reason: NOT_BACKED_UP[r.state] ?? r.state });
          continue;
        }
        if (!r.placement) {
          skipped.push({
            siteId: r.siteId,
            state: r.state,
            reason: 'active but not placed: no hosts recorded',
          });
          continue;
        }
        active.push({
          siteId: r.siteId,
          plan: r.spec?.plan,
          dbHost: r.placement.dbHost,
          storageHost: r.placement.storageHost,
        });
      }
    }),
  );
  const bySite = (a: { siteId: string }, b: { siteId: string }) => (a.siteId < b.siteId ? -1 : 1);
  return { active: active.sort(bySite), skipped: skipped.sort(bySite) };
}

/**
 * The records of several sites, from each site's own workflow (`site` query): what a patch roll
 * plans with (every site's app servers). A site with no workflow is `null` (containers with its
 * label may still be on a host: the roll leaves their routes alone). Read-only; a decision that
 * must hold is re-made under the site's lock, from the record the lock grant carries. And the
 * sites, from visibility and the same query: what the nightly backups back up, and what they skip.
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

  return {
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

    /**
     * Every active site with its DB and storage host (what the nightly backups back up), and every
     * other site with why it is not backed up. Read-only.
     */
    async listSitesToBackUp(): Promise<{ active: ActiveSite[]; skipped: SkippedSite[] }> {
      if (!client)
        throw failure(FailureType.InvalidInput, 'this worker has no Temporal client for the sites');
      return sitesToBackUp(client);
    },
  };
}
