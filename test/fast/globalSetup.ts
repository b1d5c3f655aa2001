import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { findTestServer } from './support';

/**
 * Once a run of the fast project: check that the time-skipping server is installed (a clear
 * message, before any test starts) and bundle the workflows once (test/fast/workflows.ts: the
 * platform's and the tests' own) for every fast test file's worker.
 */
export default async function fastGlobalSetup() {
  findTestServer();
  const t0 = Date.now();
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-fast-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, code);
  process.env.QM_FAST_WORKFLOW_BUNDLE = bundlePath;
  console.log(`\n[fast] workflows bundled in ${Date.now() - t0} ms`);
}
