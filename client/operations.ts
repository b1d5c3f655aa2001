import { createHash } from 'node:crypto';
import {
  isGrpcServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { TemporalFailure, type ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import {
  BackupSiteInput,
  ChangePlanInput,
  DeployReleaseInput,
  DeprovisionSiteInput,
  progressQuery,
  ProvisionSiteInput,
  RepairSiteInput,
  RestoreSiteInput,
  ResumeSiteInput,
  RollbackSiteInput,
  SuspendSiteInput,
  type OperationProgress,
} from '../protocol/operations';
import { siteQuery, siteWorkflowId, type SiteView } from '../protocol/site';
import {
  CustomerId,
  Hosts,
  Operation,
  Release,
  SiteId,
  State,
  TriggeredBy,
} from '../protocol/searchAttributes';
import { parseOrThrow } from '../schema/common';
import { SiteId as SiteIdSchema } from '../schema/site';
import type * as workflows from '../workflows';

/**
 * Starting and reading site operations: the one module the billing API and the `qm` CLI share.
 *
 * An operation is a workflow whose id is `<operation>:<siteId>:<idempotency key>`. Starting it
 * twice with the same key returns the first one (running or finished) and never starts a second;
 * a key reused for a different request is refused. Operations on one site run one at a time,
 * in order, behind the site's lock (workflows/lib/siteLock.ts): one started while another holds
 * the lock starts, waits its turn, and says so (`queued`).
 *
 * A new operation joins by adding its workflow to OPERATIONS (and OperationKind) and a route to
 * the API; nothing else changes. Push deploys started by the Git webhook (`deploy:<site>:<commit>`)
 * have the same shape of id, so they are read here like any other deploy.
 */

/** The operations the API and `qm` start, each one workflow type. */
export const OperationKind = z.enum([
  'provision',
  'deprovision',
  'suspend',
  'resume',
  'change-plan',
  'backup',
  'restore',
  'deploy',
  'rollback',
  'repair',
]);
export type OperationKind = z.infer<typeof OperationKind>;

/**
 * `Idempotency-Key` (the API's header, `qm --key`): the caller's id for this request (the billing
 * order id does well), 1-64 letters, digits, `_` and `-`, starting with a letter or digit. It
 * becomes part of the workflow id, so the same key never starts a second operation.
 */
export const IdempotencyKey = z
  .string({ error: 'the Idempotency-Key header is required on POST, PATCH and DELETE' })
  .min(1, 'the Idempotency-Key header is required on POST, PATCH and DELETE')
  .max(64, 'an Idempotency-Key is at most 64 characters')
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]*$/,
    'an Idempotency-Key is letters, digits, _ and -, starting with a letter or digit',
  );

/** An operation's id is its workflow id: `<operation>:<siteId>:<idempotency key>`. */
export function operationId(kind: OperationKind, siteId: string, key: string): string {
  return `${kind}:${siteId}:${key}`;
}

export const OperationId = z
  .string()
  .max(160)
  .transform((id, ctx) => {
    const [kind, siteId, key, ...rest] = id.split(':');
    const parts = z
      .tuple([OperationKind, SiteIdSchema, IdempotencyKey])
      .safeParse([kind, siteId ?? '', key ?? '']);
    if (!parts.success || rest.length) {
      ctx.addIssue({
        code: 'custom',
        message: `an operation id is <${OperationKind.options.join('|')}>:<siteId>:<idempotency key>`,
      });
      return z.NEVER;
    }
    const [k, s, i] = parts.data;
    return { id, kind: k, siteId: s, key: i };
  });
export type ParsedOperationId = Exclude<z.output<typeof OperationId>, never>;

type Workflows = typeof workflows;
/** What a workflow function takes. */
type InputOf<T extends keyof Workflows> = Parameters<Workflows[T]>[0];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * One operation: the workflow it starts, the schema its input is checked against (one whose input
 * type is not exactly what the workflow function takes does not compile: the call then asks for an
 * argument that says so), and whether the site must already be known.
 */
function operation<T extends keyof Workflows, S extends z.ZodType>(
  workflowType: T,
  input: S,
  needsSite: boolean,
  ..._mismatch: Same<z.input<S>, InputOf<T>> extends true ? [] : ['the schema is not the workflow input']
) {
  return { workflowType, input, needsSite };
}

export const OPERATIONS = {
  provision: operation('provisionSite', ProvisionSiteInput, false),
  deprovision: operation('deprovisionSite', DeprovisionSiteInput, true),
  suspend: operation('suspendSite', SuspendSiteInput, true),
  resume: operation('resumeSite', ResumeSiteInput, true),
  'change-plan': operation('changePlan', ChangePlanInput, true),
  backup: operation('backupSite', BackupSiteInput, true),
  restore: operation('restoreSite', RestoreSiteInput, true),
  deploy: operation('deployRelease', DeployReleaseInput, true),
  rollback: operation('rollbackSite', RollbackSiteInput, true),
  repair: operation('repairSite', RepairSiteInput, true),
} satisfies Record<OperationKind, { workflowType: keyof Workflows; input: z.ZodType; needsSite: boolean }>;

/** How long a query may take before we say no worker answers (a query needs a running worker). */
const QUERY_TIMEOUT_MS = 5000;

export class SiteNotFoundError extends Error {
  override readonly name = 'SiteNotFoundError';
  constructor(readonly siteId: string) {
    super(`site ${siteId} is not known to the platform`);
  }
}

export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  constructor(readonly operationId: string) {
    super(
      `the Idempotency-Key of ${operationId} was already used for a different request: ` +
        'use a new key for a new request',
    );
  }
}

/** A query went unanswered: no worker is polling the task queue (or it is overloaded). */
export class NoWorkerError extends Error {
  override readonly name = 'NoWorkerError';
}

export interface StartRequest {
  kind: OperationKind;
  siteId: string;
  key: string;
  /** The workflow's input, validated here against the workflow's own schema. */
  input: unknown;
  taskQueue: string;
  /** `api:<client>`, `ops:<user>`: the TriggeredBy search attribute. */
  triggeredBy: string;
}

export interface StartedOperation {
  operationId: string;
  operation: OperationKind;
  siteId: string;
  /** False when the key had already started this operation: nothing new was started. */
  created: boolean;
  state: string;
  /** True when another operation holds the site's lock: this one waits its turn. */
  queued: boolean;
  /** The operation holding the site's lock, when queued. */
  behind?: string;
}

/** A stable digest of what was asked (who asked excluded): a repeated request has the same one. */
function requestHash(kind: OperationKind, input: Record<string, unknown>): string {
  const { triggeredBy: _ignored, ...what } = input;
  return createHash('sha256')
    .update(JSON.stringify([kind, what]))
    .digest('hex');
}

async function describeOrUndefined(handle: WorkflowHandle) {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Start an operation, or return the one its idempotency key already started. Throws
 * InvalidInputError (bad input: nothing started), SiteNotFoundError, IdempotencyConflictError.
 */
export async function startOperation(client: Client, req: StartRequest): Promise<StartedOperation> {
  const def = OPERATIONS[req.kind];
  const input = parseOrThrow(def.input, req.input, `${def.workflowType} input`) as Record<string, unknown>;
  if ((input.siteId ?? (input.site as { siteId?: string } | undefined)?.siteId) !== req.siteId)
    throw new Error(`internal: the input's site id is not ${req.siteId}`);
  const id = operationId(req.kind, req.siteId, req.key);
  const hash = requestHash(req.kind, input);
  const handle = client.workflow.getHandle(id);

  const existing = async (): Promise<StartedOperation> => {
    const d = await handle.describe();
    if (d.type !== def.workflowType || d.memo?.requestHash !== hash) throw new IdempotencyConflictError(id);
    return {
      operationId: id,
      operation: req.kind,
      siteId: req.siteId,
      created: false,
      state: d.status.name,
      ...(d.status.name === 'RUNNING' ? await lockState(client, req.siteId, id) : { queued: false }),
    };
  };

  if (await describeOrUndefined(handle)) return existing();
  if (def.needsSite && !(await siteIsKnown(client, req.siteId))) throw new SiteNotFoundError(req.siteId);

  try {
    await client.workflow.start(def.workflowType, {
      workflowId: id,
      taskQueue: req.taskQueue,
      args: [input],
      // The same id never runs twice, running or finished: a duplicate start fails, and is
      // answered with the operation that already has the id.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
      memo: { requestHash: hash },
      // Set at start (the workflow sets them again) so visibility finds it before a worker runs it.
      typedSearchAttributes: [
        { key: SiteId, value: req.siteId },
        { key: Operation, value: req.kind },
        { key: TriggeredBy, value: req.triggeredBy },
        ...(req.kind === 'provision'
          ? [{ key: CustomerId, value: (input.site as { customerId: string }).customerId }]
          : []),
      ],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return existing(); // a concurrent twin won
    throw err;
  }
  return {
    operationId: id,
    operation: req.kind,
    siteId: req.siteId,
    created: true,
    state: 'RUNNING',
    ...(await lockState(client, req.siteId, id)),
  };
}

/** Is another operation holding the site's lock (so `operationId` waits)? */
async function lockState(
  client: Client,
  siteId: string,
  operationId: string,
): Promise<{ queued: boolean; behind?: string }> {
  const site = await readSite(client, siteId).catch(() => undefined);
  const holder = site?.view?.holder;
  return holder && holder.workflowId !== operationId
    ? { queued: true, behind: holder.workflowId }
    : { queued: false };
}

async function queryWithin<T>(client: Client, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await client.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, fn);
  } catch (err) {
    if (deadlineExceeded(err))
      throw new NoWorkerError(`${what}: no worker answered within ${QUERY_TIMEOUT_MS / 1000} s`);
    throw err;
  }
}

function deadlineExceeded(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && e.code === 4) return true; // DEADLINE_EXCEEDED
    if (e instanceof Error && /DEADLINE_EXCEEDED|deadline exceeded/i.test(e.message)) return true;
  }
  return false;
}

export interface SiteState {
  /** The site workflow's status: RUNNING, or COMPLETED once the site is deleted. */
  status: string;
  /** Its record, lock holder and queue (absent when the site workflow failed or was terminated). */
  view?: SiteView;
}

/** The site as its own workflow holds it, or undefined when the platform never knew it. */
export async function readSite(client: Client, siteId: string): Promise<SiteState | undefined> {
  const handle = client.workflow.getHandle<Workflows['site']>(siteWorkflowId(siteId));
  const d = await describeOrUndefined(handle);
  if (!d) return undefined;
  if (d.status.name === 'RUNNING')
    return {
      status: d.status.name,
      view: await queryWithin(client, `site ${siteId}`, () => handle.query(siteQuery)),
    };
  if (d.status.name === 'COMPLETED')
    return { status: d.status.name, view: { record: await handle.result(), queue: [] } };
  return { status: d.status.name };
}

/**
 * Does the platform know the site: a record that is not new or deleted, an operation holding or
 * waiting for its lock, or a running operation on it that has not reached the lock yet (a
 * provision started a moment ago)?
 */
export async function siteIsKnown(client: Client, siteId: string): Promise<boolean> {
  const site = await readSite(client, siteId);
  const view = site?.view;
  if (view && (view.holder || view.queue.length || !['new', 'deleted'].includes(view.record.state)))
    return true;
  return (await runningOperations(client, siteId)) > 0;
}

/** Running operation workflows on a site, from visibility (site ids are slugs: safe to quote). */
async function runningOperations(client: Client, siteId: string): Promise<number> {
  if (!/^[a-z0-9-]+$/.test(siteId)) throw new Error(`internal: unsafe site id in a query: ${siteId}`);
  const { count } = await client.workflow.count(
    `SiteId = '${siteId}' AND ExecutionStatus = 'Running' AND WorkflowType != 'site'`,
  );
  return count;
}

export interface OperationView {
  id: string;
  operation: OperationKind;
  siteId: string;
  /** RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT. */
  state: string;
  startedAt: string;
  closedAt?: string;
  /** While running: waiting for the site's lock behind another operation. */
  queued?: boolean;
  /** While running: the `progress` query's answer (null when no worker answered it). */
  progress?: OperationProgress | null;
  progressUnavailable?: string;
  /** When completed: the workflow's result. */
  result?: unknown;
  /** When it did not complete: why. */
  error?: { type: string; message: string };
}

/** An operation's state: progress while it runs, its result or error once it ended. */
export async function readOperation(
  client: Client,
  op: ParsedOperationId,
): Promise<OperationView | undefined> {
  const handle = client.workflow.getHandle(op.id);
  const d = await describeOrUndefined(handle);
  if (!d || d.type !== OPERATIONS[op.kind].workflowType) return undefined;
  const view: OperationView = {
    id: op.id,
    operation: op.kind,
    siteId: op.siteId,
    state: d.status.name,
    startedAt: d.startTime.toISOString(),
    ...(d.closeTime ? { closedAt: d.closeTime.toISOString() } : {}),
  };
  if (d.status.name === 'RUNNING') {
    try {
      view.progress = await queryWithin(client, `operation ${op.id}`, () => handle.query(progressQuery));
      view.queued = view.progress.waitingForLock;
    } catch (err) {
      // The state is known (describe answered); only the query failed: no worker, or one that is
      // stuck or overloaded. Say so rather than fail the whole answer.
      view.progress = null;
      view.progressUnavailable =
        err instanceof NoWorkerError
          ? err.message
          : `the progress query failed: ${err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err)}`;
    }
    return view;
  }
  try {
    view.result = await handle.result();
  } catch (err) {
    view.error = failureOf(err);
  }
  return view;
}

function failureOf(err: unknown): { type: string; message: string } {
  const cause = err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof TemporalFailure)
    return { type: (cause as ApplicationFailure).type ?? cause.name, message: cause.message };
  return { type: 'Error', message: err instanceof Error ? err.message : String(err) };
}

export interface SiteSummary {
  siteId: string;
  state: string;
  customerId?: string;
  release?: string;
  hosts: string[];
  /** Which operation holds the site now ('idle' when none). */
  operation?: string;
  workflowStatus: string;
}

/** Every site the platform knows, from visibility (the site workflows' search attributes). */
export async function listSites(client: Client): Promise<SiteSummary[]> {
  const latest = new Map<string, { start: number; site: SiteSummary }>();
  for await (const wf of client.workflow.list({
    query: "WorkflowType = 'site' AND ExecutionStatus != 'ContinuedAsNew'",
  })) {
    const sa = wf.typedSearchAttributes;
    const siteId = sa.get(SiteId) ?? wf.workflowId.replace(/^site:/, '');
    const start = wf.startTime.getTime();
    if ((latest.get(siteId)?.start ?? -1) > start) continue; // a deleted site's older run
    latest.set(siteId, {
      start,
      site: {
        siteId,
        state: sa.get(State) ?? 'unknown',
        customerId: sa.get(CustomerId),
        release: sa.get(Release),
        hosts: sa.get(Hosts) ?? [],
        operation: sa.get(Operation),
        workflowStatus: wf.status.name,
      },
    });
  }
  return [...latest.values()].map((v) => v.site).sort((a, b) => a.siteId.localeCompare(b.siteId));
}
