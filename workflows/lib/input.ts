import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeIssues } from '../../schema/common';

/**
 * Validate a workflow's input (it may have been pasted into the Web UI) before anything happens:
 * a bad input fails the workflow at once, non-retryably, with every bad field named.
 */
export function parseWorkflowInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success)
    throw ApplicationFailure.create({
      type: 'InvalidInput',
      message: `invalid ${what}: ${describeIssues(result.error)}`,
      nonRetryable: true,
    });
  return result.data;
}

/** The message of an activity or child failure, not the "Activity task failed" wrapper around it. */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

/**
 * What a failure says of itself: past the wrappers that say nothing ("Activity task failed",
 * "Child Workflow execution failed") to the first message of its own. A child operation's failure
 * names its step, host and root cause (lib/operation.ts): that is kept whole.
 */
export function ownMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause instanceof Error)
    e = e.cause;
  return e instanceof Error ? e.message : String(err);
}
