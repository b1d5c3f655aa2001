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
