import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { CheckFleetResult } from '../protocol/checkFleet';
import type { NightlyBackupsResult, NightlyProgress } from '../protocol/nightlyBackups';
import type { OperationProgress } from '../protocol/operations';
import type { PatchRollProgress, PatchRollResult } from '../protocol/patchRoll';
import { SiteId } from '../protocol/searchAttributes';
import {
  failureOf,
  NoWorkerError,
  OperationId,
  OPERATIONS,
  queryWithin,
  readOperation,
  type OperationError,
  type OperationKind,
  type OperationView,
} from './operations';

/**
 * Any workflow ops start, read by its id: the site operations (client/operations.ts, whatever
 * their id), patch rolls, nightly backups and fleet checks, each with what its `progress` query
 * says while it runs and its result or failure once it ended. What `qm op` shows.
 */

interface RunBase {
  id: string;
  workflowType: string;
  /** RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT. */
  state: string;
  startedAt: string;
  closedAt?: string;
  /** While running, when the `progress` query went unanswered: why. */
  progressUnavailable?: string;
  /** When it did not complete: why. */
  error?: OperationError;
}

export type RunView =
  | { kind: 'site-operation'; view: OperationView }
  | (RunBase & { kind: 'patch-roll'; progress?: PatchRollProgress | null; result?: PatchRollResult })
  | (RunBase & { kind: 'nightly-backups'; progress?: NightlyProgress | null; result?: NightlyBackupsResult })
  | (RunBase & { kind: 'fleet-check'; progress?: CheckFleetResult | null; result?: CheckFleetResult })
  | (RunBase & { kind: 'other'; result?: unknown });

const KINDS: Record<string, Exclude<RunView['kind'], 'site-operation'>> = {
  patchRoll: 'patch-roll',
  nightlyBackups: 'nightly-backups',
  checkFleet: 'fleet-check',
};

/** The site operation a workflow type runs (`suspendSite` → suspend), if it is one. */
function siteOperationOf(workflowType: string): OperationKind | undefined {
  return (Object.keys(OPERATIONS) as OperationKind[]).find(
    (k) => OPERATIONS[k].workflowType === workflowType,
  );
}

/** The workflow with this id (its latest run), or undefined when Temporal has none. */
export async function readRun(client: Client, workflowId: string): Promise<RunView | undefined> {
  const parsed = OperationId.safeParse(workflowId);
  if (parsed.success) {
    const view = await readOperation(client, parsed.data);
    if (view) return { kind: 'site-operation', view };
  }
  const handle = client.workflow.getHandle(workflowId);
  let d;
  try {
    d = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  const base: RunBase = {
    id: workflowId,
    workflowType: d.type,
    state: d.status.name,
    startedAt: d.startTime.toISOString(),
    ...(d.closeTime ? { closedAt: d.closeTime.toISOString() } : {}),
  };

  const siteOperation = siteOperationOf(d.type);
  if (siteOperation) {
    // a site operation started with an id of another shape (the Web UI lets ops type any)
    const view: OperationView = { ...base, operation: siteOperation, siteId: '' };
    view.siteId = d.typedSearchAttributes.get(SiteId) ?? '';
    if (d.status.name === 'RUNNING') {
      const p = await progressOf<OperationProgress>(client, workflowId);
      view.progress = p.progress;
      if (p.progress) {
        view.queued = p.progress.waitingForLock;
        view.siteId ||= p.progress.siteId;
      }
      if (p.unavailable) view.progressUnavailable = p.unavailable;
    } else Object.assign(view, await outcomeOf(client, workflowId));
    return { kind: 'site-operation', view };
  }

  const kind = KINDS[d.type] ?? 'other';
  const run = { ...base, kind } as RunView & RunBase;
  if (d.status.name === 'RUNNING') {
    if (kind !== 'other') {
      const p = await progressOf<never>(client, workflowId);
      Object.assign(
        run,
        { progress: p.progress },
        p.unavailable ? { progressUnavailable: p.unavailable } : {},
      );
    }
  } else Object.assign(run, await outcomeOf(client, workflowId));
  return run;
}

/** The `progress` query (every one of these workflows answers one by that name), or why not. */
async function progressOf<T>(
  client: Client,
  workflowId: string,
): Promise<{ progress: T | null; unavailable?: string }> {
  try {
    const progress = await queryWithin(client, `workflow ${workflowId}`, () =>
      client.workflow.getHandle(workflowId).query<T>('progress'),
    );
    return { progress };
  } catch (err) {
    return {
      progress: null,
      unavailable:
        err instanceof NoWorkerError
          ? err.message
          : `the progress query failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
}

async function outcomeOf(
  client: Client,
  workflowId: string,
): Promise<{ result?: never; error?: RunBase['error'] }> {
  try {
    return { result: (await client.workflow.getHandle(workflowId).result()) as never };
  } catch (err) {
    return { error: failureOf(err) };
  }
}

/**
 * Did the run end well? A workflow that completed can still report failures in its result: a
 * fleet check with an unhealthy host, a night with a failed backup, a patch roll that stopped or
 * left a host failed. Undefined while it runs.
 */
export function endedWell(run: RunView): boolean | undefined {
  const state = run.kind === 'site-operation' ? run.view.state : run.state;
  if (state === 'RUNNING') return undefined;
  if (state !== 'COMPLETED') return false;
  switch (run.kind) {
    case 'fleet-check':
      return (run.result?.failed.length ?? 0) === 0;
    case 'nightly-backups':
      return (run.result?.failed.length ?? 0) === 0;
    case 'patch-roll':
      return run.result?.status === 'completed' && run.result.failed.length === 0;
    default:
      return true;
  }
}
