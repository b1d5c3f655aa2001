import fs from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Client } from '@temporalio/client';

export const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/**
 * With QM_RECORD_HISTORIES=1, keep the history of a finished workflow as
 * test/histories/<name>.json, for the replay test (test/replay.test.ts) to run against every
 * later change of the workflow code. Record again only on purpose: a history recorded from new
 * code no longer proves that old runs still replay.
 */
export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (process.env.QM_RECORD_HISTORIES !== '1') return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  fs.writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), historyToJSON(history));
}
