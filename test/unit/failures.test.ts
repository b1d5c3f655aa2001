import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, RetryState } from '@temporalio/common';
import { failure, FailureType } from '../../activities/errors';
import { failureOf } from '../../client/operations';
import type { OperationProgress } from '../../protocol/operations';
import { operationFailure } from '../../workflows/lib/operation';
import { HostStepFailed } from '../../workflows/lib/parallel';

/**
 * A failed operation names its root cause, step and host: the workflow's failure (what the Web UI
 * shows) and the view the API and `qm` read, from the cause chains workflows really get.
 */

const mariadbDown =
  "host2: mariadb exited 1: ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)";

/** What a workflow gets when an activity failed: the ActivityFailure wrapper around the activity's own failure. */
const activityFailed = (activityType: string, cause: Error) =>
  new ActivityFailure(
    'Activity task failed',
    activityType,
    '1',
    RetryState.MAXIMUM_ATTEMPTS_REACHED,
    'w',
    cause,
  );

const progress = (step: string, waitingForLock = false): OperationProgress => ({
  operation: 'backup',
  siteId: 'acme',
  waitingForLock,
  step,
  done: [],
  hosts: {},
});

test('an activity failure escaping an operation becomes one <Op>Failed naming the step, the host and the root cause', () => {
  const root = failure(FailureType.CommandFailed, mariadbDown, { host: 'host2', argv0: 'mariadb' });
  const wrapped = activityFailed('backupDatabase', root);
  const f = operationFailure(progress('on-demand backup b1: database'), wrapped) as ApplicationFailure;
  expect(f).toBeInstanceOf(ApplicationFailure);
  expect(f.type).toBe('BackupFailed');
  expect(f.message).toBe(
    `backup acme failed at "on-demand backup b1: database" on host2: mariadb exited 1: ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)`,
  );
  expect(f.details).toEqual([
    {
      step: 'on-demand backup b1: database',
      host: 'host2',
      activityType: 'backupDatabase',
      rootType: 'CommandFailed',
    },
  ]);
  expect(f.nonRetryable).toBe(true);
  expect(f.cause).toBe(wrapped);
});

test('a host step names its host; the lock wait is a step; an operation with a dash is one word', () => {
  const root = failure(
    FailureType.HostKeyMismatch,
    'host key of host3 (10.0.0.13:22) is SHA256:x: refusing',
    {
      host: 'host3',
    },
  );
  const step = new HostStepFailed('host3', activityFailed('stopSiteContainers', root), 1);
  const f = operationFailure(
    { ...progress('stop containers'), operation: 'suspend' },
    step,
  ) as ApplicationFailure;
  expect(f.type).toBe('SuspendFailed');
  expect(f.message).toBe(
    'suspend acme failed at "stop containers" on host3: host key of host3 (10.0.0.13:22) is SHA256:x: refusing',
  );
  expect(f.details?.[0]).toMatchObject({ host: 'host3', rootType: 'HostKeyMismatch' });

  const waiting = operationFailure(
    { ...progress('starting', true), operation: 'change-plan' },
    activityFailed('requestSiteLock', ApplicationFailure.create({ message: 'no site workflow' })),
  ) as ApplicationFailure;
  expect(waiting.type).toBe('ChangePlanFailed');
  expect(waiting.message).toBe('change-plan acme failed at "waiting for the site lock": no site workflow');
});

test("the workflow's own failures, cancellations and bugs in workflow code pass through as they are", () => {
  const refusal = ApplicationFailure.create({
    type: 'Conflict',
    message: 'site acme is new',
    nonRetryable: true,
  });
  expect(operationFailure(progress('x'), refusal)).toBe(refusal);
  const cancelled = new CancelledFailure('cancelled');
  expect(operationFailure(progress('x'), cancelled)).toBe(cancelled);
  // a TypeError fails the workflow task (retried until the code is fixed), never the operation
  const bug = new TypeError("Cannot read properties of undefined (reading 'map')");
  expect(operationFailure(progress('x'), bug)).toBe(bug);
});

test('the view of a failed operation: its own failure with step and host, or the root cause when it has none', () => {
  const root = failure(FailureType.CommandFailed, mariadbDown, { host: 'host2' });
  const wrapped = activityFailed('backupDatabase', root);
  const op = operationFailure(progress('on-demand backup b1: database'), wrapped) as ApplicationFailure;
  const failed = (cause: Error) =>
    new WorkflowFailedError('Workflow execution failed', cause, RetryState.NON_RETRYABLE_FAILURE);

  expect(failureOf(failed(op))).toEqual({
    type: 'BackupFailed',
    message: op.message,
    step: 'on-demand backup b1: database',
    host: 'host2',
    activityType: 'backupDatabase',
    rootCause: { type: 'CommandFailed', message: mariadbDown },
  });
  // an operation failed by a bare activity failure ("Activity task failed"): the root speaks for it
  expect(failureOf(failed(wrapped))).toEqual({
    type: 'CommandFailed',
    message: mariadbDown,
    host: 'host2',
    activityType: 'backupDatabase',
    rootCause: { type: 'CommandFailed', message: mariadbDown },
  });
  // a deploy's own failure names its step and host in its details
  const deploy = ApplicationFailure.create({
    type: 'DeployFailed',
    message: 'deploying abc to acme failed at "switch app servers" on host3: …',
    details: [{ failedStep: 'switch app servers', failedHost: 'host3' }],
    cause: wrapped,
  });
  expect(failureOf(failed(deploy))).toMatchObject({
    type: 'DeployFailed',
    step: 'switch app servers',
    host: 'host3',
    rootCause: { type: 'CommandFailed' },
  });
});
