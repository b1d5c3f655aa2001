import fs from 'node:fs';
import type { DevServer } from '../../dev/temporal';
import { testbed } from '../../dev/fleet';

/** Stop what globalSetup started: the dev server, and the fleet unless it was already up (or QM_KEEP_TESTBED=1). */
export default async function globalTeardown() {
  const state = (globalThis as Record<string, unknown>).__qmTest as
    { server: DevServer; startedBed: boolean } | undefined;
  if (!state) return;
  await state.server.stop();
  if (process.env.QM_TEST_WORKFLOW_BUNDLE) fs.rmSync(process.env.QM_TEST_WORKFLOW_BUNDLE, { force: true });
  if (state.startedBed && process.env.QM_KEEP_TESTBED !== '1') testbed.down();
}
