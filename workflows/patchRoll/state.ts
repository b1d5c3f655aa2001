import { condition } from '@temporalio/workflow';
import type { PatchRollConfig } from '../../protocol/patchRoll';
import { FINAL_HOST_STATES, type HostState, type PatchRollProgress } from '../../protocol/patchRoll';

export type PatchRollResult = Pick<
  PatchRollProgress,
  'rollId' | 'status' | 'stopReason' | 'done' | 'failed' | 'skipped' | 'heldBack' | 'notStarted' | 'hosts'
>;

/** A roll's progress before its planning. */
export function newProgress(cfg: PatchRollConfig, rollId: string): PatchRollProgress {
  return {
    operation: 'patch-roll',
    rollId,
    status: 'planning',
    paused: false,
    waitingForLock: false,
    batches: [],
    currentBatch: 0,
    done: [],
    failed: [],
    remaining: [],
    skipped: [],
    heldBack: [],
    notStarted: [],
    errorBudget: { allowed: 0, used: 0 },
    canary: { approved: !cfg.canary },
    hosts: {},
  };
}

/** condition() with an optional timeout: true if `fn` came true, false if the time ran out. */
export async function waitFor(fn: () => boolean, timeoutMs: number | undefined): Promise<boolean> {
  if (timeoutMs === undefined) {
    await condition(fn);
    return true;
  }
  return condition(fn, timeoutMs);
}

/**
 * What a roll knows of itself: its input, its progress (what the `progress` query shows), and
 * what ops asked for beyond it; and the questions the roll asks of them (stop? may this host start?).
 */
export class RollState {
  /** Why ops aborted, once they did. */
  abortReason: string | undefined;
  /** Whether a batch is running (a pending host of it is skipped at its last look, not at once). */
  batchRunning = false;
  /** Hosts of the running batch that ops skipped before their patch started. */
  readonly skipRequested = new Set<string>();
  private readonly cutoff: number | undefined;

  constructor(
    readonly cfg: PatchRollConfig,
    readonly progress: PatchRollProgress,
  ) {
    this.cutoff = cfg.window ? Date.parse(cfg.window.notAfter) : undefined;
  }

  finished(): boolean {
    return ['completed', 'stopped', 'aborted'].includes(this.progress.status);
  }

  /** The time left until the window closes (none without a window). */
  msToCutoff(): number | undefined {
    return this.cutoff === undefined ? undefined : Math.max(0, this.cutoff - Date.now());
  }

  budgetSpent(): boolean {
    return this.progress.errorBudget.used > this.progress.errorBudget.allowed;
  }

  /** Why the roll must stop (abort, budget, window), or undefined to go on. */
  stopReason(): string | undefined {
    const { errorBudget } = this.progress;
    return (
      this.abortReason ??
      (this.budgetSpent()
        ? `error budget spent: ${errorBudget.used} host(s) failed, ${errorBudget.allowed} allowed`
        : this.cutoff !== undefined && Date.now() >= this.cutoff
          ? `the maintenance window closed at ${this.cfg.window!.notAfter}`
          : undefined)
    );
  }

  /** Why the host's patch must not start now (skip, abort, budget, window), or undefined to go on. */
  mayStart(host: string): { state: HostState; reason: string } | undefined {
    if (this.skipRequested.has(host)) return { state: 'skipped', reason: 'skipped by ops' };
    const why = this.stopReason();
    if (!why) return undefined;
    // 'finish-batch': a batch that has started runs to its end, even past the window
    if (!this.abortReason && !this.budgetSpent() && this.cfg.window?.atCutoff === 'finish-batch')
      return undefined;
    return { state: 'not-started', reason: why };
  }

  /** The host lists and the budget's use, from the hosts' states. */
  refresh(): void {
    const { progress } = this;
    const by = (s: HostState) => Object.keys(progress.hosts).filter((h) => progress.hosts[h]!.state === s);
    progress.done = by('done');
    progress.failed = by('failed');
    progress.skipped = by('skipped');
    progress.heldBack = by('held-back');
    progress.notStarted = by('not-started');
    progress.remaining = Object.keys(progress.hosts).filter(
      (h) => !FINAL_HOST_STATES.includes(progress.hosts[h]!.state),
    );
    progress.errorBudget.used = progress.failed.length;
  }

  /** The roll is over: the hosts it did not reach are not started, and its status says why. */
  conclude(): void {
    const { progress } = this;
    const why = this.stopReason();
    for (const hp of Object.values(progress.hosts))
      if (hp.state === 'pending')
        Object.assign(hp, { state: 'not-started', reason: why, leftAs: 'untouched' });
    this.refresh();
    // a host is 'not-started' only because the roll stopped (here, or in its batch at its last look)
    const cut = progress.notStarted.length > 0;
    progress.status = this.abortReason ? 'aborted' : cut || this.budgetSpent() ? 'stopped' : 'completed';
    progress.stopReason =
      progress.status === 'completed'
        ? undefined
        : (why ?? progress.notStarted.map((h) => progress.hosts[h]!.reason).find((r) => !!r));
  }

  result(): PatchRollResult {
    const { rollId, status, stopReason, done, failed, skipped, heldBack, notStarted, hosts } = this.progress;
    return { rollId, status, stopReason, done, failed, skipped, heldBack, notStarted, hosts };
  }
}
