import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH, PAYLOAD_CONVERTER_PATH } from '../../client/codec';
import { startDevServer } from '../../dev/temporal';
import { TESTBED_DIR, testbed } from '../../dev/fleet';

/**
 * Once a run: the real fleet (reused when one is up already), a Temporal dev server on free ports,
 * and the workflow bundle that every test worker reuses.
 */
export default async function globalSetup() {
  const t0 = Date.now();
  const reused = testbed.isUp();
  if (!reused) testbed.up();
  const tBed = Date.now();

  const logDir = path.join(TESTBED_DIR, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const server = await startDevServer({ headless: true, logFile: path.join(logDir, 'temporal-test.log') });
  const tServer = Date.now();

  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    // as deploy/build.ts bundles for production: failure messages in (encrypted) payloads
    failureConverterPath: FAILURE_CONVERTER_PATH,
    payloadConverterPath: PAYLOAD_CONVERTER_PATH,
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  // one file per run: two runs on one bed (or one machine) never replay each other's code
  const bundlePath = path.join(TESTBED_DIR, `workflow-bundle.${process.pid}.js`);
  fs.writeFileSync(bundlePath, code);

  process.env.QM_TEST_TEMPORAL_ADDRESS = server.address;
  // the bed this run uses, for workers started by tests (a test-bed "reboot" checks it is theirs)
  process.env.QM_TESTBED_DIR = TESTBED_DIR;
  process.env.QM_TEST_WORKFLOW_BUNDLE = bundlePath;
  (globalThis as Record<string, unknown>).__qmTest = { server, startedBed: !reused };
  console.log(
    `\n[setup] fleet ${reused ? 'reused' : 'up'} in ${tBed - t0} ms, Temporal at ${server.address} in ${tServer - tBed} ms, ` +
      `workflows bundled in ${Date.now() - tServer} ms`,
  );
}
