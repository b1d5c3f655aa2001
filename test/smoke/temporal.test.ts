import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Fleet } from '../../activities/fleet';
import { checkFleet } from '../../workflows';
import { openTestFleet } from '../support/fleet';
import { recordHistory } from '../support/histories';
import { testEnv, withWorker } from '../support/temporal';

let env: TestWorkflowEnvironment;
let fleet: Fleet;
beforeAll(async () => {
  env = await testEnv();
  fleet = openTestFleet();
});
afterAll(async () => {
  await fleet?.close();
  await env?.teardown();
});

test('a workflow runs on the dev server and checks every host over SSH, Docker and MariaDB', async () => {
  const workflowId = `smoke-${Date.now()}`;
  const result = await withWorker(env, fleet, (taskQueue) =>
    env.client.workflow.execute(checkFleet, { taskQueue, workflowId, args: [{}] }),
  );
  await recordHistory(workflowId, 'checkFleet');
  expect(result.failed).toEqual([]);
  expect(result.healthy).toEqual(fleet.hosts.map((h) => h.name).sort());
});
