import { z } from 'zod';
import { OperationKind } from '../client/operations';
import { Placement, SiteSpec, SiteState } from '../schema/site';

/**
 * What the API answers, as zod schemas: they generate the OpenAPI document and the tests check
 * real answers against them, so the document cannot drift from what the server does.
 */

export const ErrorResponse = z.object({
  error: z.string().meta({ description: 'A stable code: invalid_request, unauthorized, site_not_found, …' }),
  message: z.string().optional(),
  fields: z
    .record(z.string(), z.string())
    .optional()
    .meta({ description: "invalid_request only: each bad field (e.g. 'site.domains.0') and what is wrong" }),
});

export const OperationStarted = z.object({
  operationId: z.string().meta({ description: '<operation>:<siteId>:<Idempotency-Key>, the workflow id' }),
  operation: OperationKind,
  siteId: z.string(),
  created: z.boolean().meta({ description: 'false: this Idempotency-Key had already started it' }),
  state: z.string().meta({ description: 'RUNNING, COMPLETED, FAILED, …' }),
  queued: z
    .boolean()
    .meta({ description: 'true: another operation holds the site lock; this one waits its turn' }),
  behind: z.string().optional().meta({ description: 'the operation holding the site lock' }),
});

export const OperationProgress = z.object({
  operation: z.string(),
  siteId: z.string(),
  waitingForLock: z.boolean(),
  step: z.string(),
  done: z.array(z.string()),
  hosts: z.record(z.string(), z.string()),
});

export const OperationResponse = z.object({
  id: z.string(),
  operation: OperationKind,
  siteId: z.string(),
  state: z
    .enum([
      'RUNNING',
      'COMPLETED',
      'FAILED',
      'CANCELLED',
      'TERMINATED',
      'TIMED_OUT',
      'CONTINUED_AS_NEW',
      'PAUSED',
      'UNKNOWN',
    ])
    .meta({ description: "the workflow's status" }),
  startedAt: z.string(),
  closedAt: z.string().optional(),
  queued: z.boolean().optional().meta({ description: 'RUNNING only: waiting for the site lock' }),
  progress: OperationProgress.nullable()
    .optional()
    .meta({ description: 'RUNNING only; null when no worker answered the progress query' }),
  progressUnavailable: z.string().optional(),
  result: z.unknown().optional().meta({ description: 'COMPLETED only: the workflow result' }),
  error: z
    .object({ type: z.string(), message: z.string() })
    .optional()
    .meta({ description: 'FAILED, CANCELLED, TERMINATED, TIMED_OUT: why' }),
});

const Holder = z.object({
  workflowId: z.string(),
  runId: z.string(),
  operation: z.string(),
  since: z.string(),
});

export const SiteResponse = z.object({
  siteId: z.string(),
  workflowStatus: z.string().meta({ description: "the site workflow's status (COMPLETED once deleted)" }),
  record: z
    .object({
      siteId: z.string(),
      customerId: z.string().optional(),
      state: z.union([SiteState, z.literal('new')]),
      spec: SiteSpec.optional(),
      placement: Placement.optional(),
      release: z.string().optional(),
      lastOperation: z.string().optional(),
      lastGoodBackup: z
        .object({ backupId: z.string(), at: z.string() })
        .optional()
        .meta({ description: 'the newest verified backup (what a restore most likely takes)' }),
      failure: z
        .object({
          operation: z.string(),
          workflowId: z.string(),
          at: z.string(),
          step: z.string(),
          host: z.string().optional(),
          cause: z.string(),
          outOfLine: z.array(z.string()),
          stateBefore: z.string(),
          databaseSnapshot: z.string().optional(),
        })
        .nullable()
        .optional()
        .meta({
          description:
            'while failed: the operation that failed the site, its step, host and cause, what is still out of ' +
            'line and the state a repair returns it to',
        }),
    })
    .nullable(),
  holder: Holder.nullable().meta({ description: 'the operation holding the site lock' }),
  queue: z.array(Holder).meta({ description: 'operations waiting for the site lock, in order' }),
});

export const HealthResponse = z.object({ status: z.enum(['ok', 'unavailable']), temporal: z.string() });
