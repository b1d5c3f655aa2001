import fs from 'node:fs';
import path from 'node:path';

/** Remove the workflow bundle the fast project's globalSetup wrote. */
export default async function fastGlobalTeardown() {
  const p = process.env.QM_FAST_WORKFLOW_BUNDLE;
  if (p) fs.rmSync(path.dirname(p), { recursive: true, force: true });
}
