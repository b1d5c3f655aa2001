import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { checkFleet } from '../../workflows';
import { openBed, type Bed } from '../support/bed';
import { recordHistory } from '../support/histories';
import { withWorker } from '../support/temporal';

let bed: Bed;
beforeAll(async () => {
  bed = await openBed();
});
afterAll(() => bed?.close());

test('a workflow runs on the dev server and checks every host over SSH, Docker and MariaDB', async () => {
  const workflowId = `smoke-${Date.now()}`;
  const result = await withWorker(bed, (taskQueue) =>
    bed.env.client.workflow.execute(checkFleet, { taskQueue, workflowId, args: [{}] }),
  );
  await recordHistory(workflowId, 'checkFleet');
  expect(result.failed).toEqual([]);
  expect(result.healthy).toEqual(bed.fleet.hosts.map((h) => h.name).sort());
});

test('checkFleet with null, hosts not a list, an unknown field: each fails at once with InvalidInput naming the field, checking nothing', async () => {
  const inputs = [
    [null, 'expected object'],
    [{ hosts: 'host2' }, 'hosts'],
    [{ hosts: ['host2'], colour: 'red' }, 'colour'],
  ] as const;
  await withWorker(bed, async (taskQueue) => {
    for (const [input, named] of inputs) {
      const workflowId = `smoke-bad-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
      const err = await bed.env.client.workflow
        // a workflow task that failed would be retried until this timeout instead
        .execute('checkFleet', {
          taskQueue,
          workflowId,
          args: [input],
          workflowExecutionTimeout: '20 seconds',
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect([cause.type, cause.message]).toEqual([
        'InvalidInput',
        expect.stringContaining('invalid checkFleet input'),
      ]);
      expect(cause.message).toContain(named);
      const history = await bed.env.client.workflow.getHandle(workflowId).fetchHistory();
      expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
    }
  });
});
