import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findTemporalCli } from '../../dev/temporal';

export const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/**
 * With QM_RECORD_HISTORIES=1, keep the history of a finished workflow as
 * test/histories/<name>.json (the Temporal CLI's JSON, what the Web UI downloads too), for the
 * replay test (test/replay.test.ts) to run against every later change of the workflow code.
 * Record again only on purpose: a history recorded from new code no longer proves that old runs
 * still replay.
 */
export async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (process.env.QM_RECORD_HISTORIES !== '1') return;
  const json = execFileSync(
    findTemporalCli(),
    [
      'workflow',
      'show',
      '--address',
      process.env.QM_TEST_TEMPORAL_ADDRESS!,
      '-w',
      workflowId,
      '--output',
      'json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), json);
}
