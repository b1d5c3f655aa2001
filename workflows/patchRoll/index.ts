import {
  allHandlersFinished,
  condition,
  continueAsNew,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { parseWorkflowInput } from '../lib/input';
import { PatchRollInput } from '../../protocol/patchRoll';
import type { PatchRollProgress } from '../../protocol/patchRoll';
import { Operation, TriggeredBy } from '../../protocol/searchAttributes';
import { Profiles, readyForBatch, runBatch, type RollRun } from './batch';
import { handleControls } from './controls';
import { RollLocks } from './locks';
import { planRoll } from './planning';
import { newProgress, RollState, type PatchRollResult } from './state';

export { PatchRollInput };
export type { PatchRollResult };

/** State carried over by continue-as-new (between batches, when the history grows long). */
export interface PatchRollCarried {
  progress: PatchRollProgress;
  nextBatch: number;
}

/**
 * Patch the OS of a set of hosts, batch after batch, without taking any site down:
 *   select the hosts → find the sites on each (their containers' qm.site labels) and where those
 *   sites run (their records) → plan batches (a site with several app servers never has all of
 *   them out at once) → canary: the first host alone, then wait for ops' `approve` → each batch:
 *   lock its hosts' sites (sorted: no deadlock with deploys or backups) → every host at once runs
 *   its turn (host.ts: drain or maintenance page → patch → reboot → containers → checks
 *   → readmit) → release → the next batch, unless the error budget is spent, ops aborted, or the
 *   maintenance window closed.
 * Ops steer it while it runs (Updates or Signals: approve, pause, resume, abort, skipHost) and
 * watch it through the `progress` query and the search attributes Operation=patch-roll and Hosts.
 * A host that fails stays out of rotation and is reported; the roll itself never fails because a
 * host did: its result says which hosts are done, failed, skipped, held back or not started.
 */
export async function patchRoll(input: PatchRollInput, carried?: PatchRollCarried): Promise<PatchRollResult> {
  const cfg = parseWorkflowInput(PatchRollInput, input, 'patchRoll input');
  const roll = new RollState(cfg, carried?.progress ?? newProgress(cfg, workflowInfo().firstExecutionRunId));
  const { progress } = roll;
  handleControls(roll);
  upsertSearchAttributes([
    { key: Operation, value: 'patch-roll' },
    { key: TriggeredBy, value: cfg.triggeredBy ?? 'ui' },
  ]);

  // select and plan (once: a continued run carries the plan)
  const planned = carried ? undefined : await planRoll(roll);
  upsertMemo({
    summary:
      `patch roll of ${Object.keys(progress.hosts).length} host(s) in ${progress.batches.length} batch(es)` +
      (cfg.window ? `, not after ${cfg.window.notAfter}` : ''),
  });

  // the batches
  const run: RollRun = { roll, locks: new RollLocks(roll, planned), profiles: new Profiles() };
  try {
    for (let b = carried?.nextBatch ?? 0; b < progress.batches.length; b++) {
      if (!(await readyForBatch(run, b))) break;
      progress.status = 'running';
      progress.currentBatch = b + 1;
      const hosts = progress.batches[b]!.filter((h) => progress.hosts[h]!.state === 'pending');
      roll.batchRunning = true;
      try {
        const first = await run.locks.listingFor(b);
        await runBatch(run, b, hosts, first);
      } finally {
        roll.batchRunning = false;
        roll.skipRequested.clear();
        roll.refresh();
      }
      if (b + 1 < progress.batches.length && workflowInfo().continueAsNewSuggested) {
        await run.locks.settle(); // nothing left running or held: the next run lists and asks again
        await condition(allHandlersFinished);
        await continueAsNew<typeof patchRoll>(input, { progress, nextBatch: b + 1 });
      }
    }
  } finally {
    await run.locks.releaseKept();
  }

  // the result
  roll.conclude();
  await condition(allHandlersFinished);
  return roll.result();
}
