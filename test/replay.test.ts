import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import * as workflows from '../workflows';
import { HISTORIES_DIR } from './support/histories';
import { testEnv } from './support/temporal';

/**
 * Replay safety: every recorded history (one or more per workflow type, test/histories/*.json)
 * replays against today's workflow code. A change that would break workflows already running in
 * production (a reordered step, a new activity without patched()) fails here.
 */
const files = fs.existsSync(HISTORIES_DIR)
  ? fs.readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'))
  : [];

beforeAll(async () => {
  await (await testEnv()).teardown(); // installs the Runtime (quiet logger) once for this process
});

test('there is a recorded history for every workflow type the worker runs', () => {
  const types = new Set(files.map((f) => f.replace(/(\.[^.]+)?\.json$/, '')));
  for (const type of Object.keys(workflows)) expect(types).toContain(type);
});

test.each(files)('%s replays against the current workflow code', async (file) => {
  // the CLI's JSON as it is: the worker parses it with its own protobuf types
  const history: unknown = JSON.parse(fs.readFileSync(path.join(HISTORIES_DIR, file), 'utf8'));
  await Worker.runReplayHistory(
    { workflowBundle: { codePath: process.env.QM_TEST_WORKFLOW_BUNDLE! } },
    history,
    file.replace(/\.json$/, ''),
  );
});
