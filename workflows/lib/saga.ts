import { CancellationScope } from '@temporalio/workflow';
import { rootMessage } from './input';

export interface CompensationFailure {
  step: string;
  error: string;
}

/**
 * Undo steps in reverse order when a business process fails. Every undo is idempotent, so it is
 * registered just before its step runs: a step that fails half-way (a container created, its
 * health check failed) is undone too. Undo runs in a non-cancellable scope (a cancelled workflow
 * still cleans up), and an undo that fails is reported, never swallowed: the caller gets the list.
 */
export class Saga {
  private readonly undo: { step: string; fn: () => Promise<unknown> }[] = [];

  add(step: string, fn: () => Promise<unknown>): void {
    this.undo.push({ step, fn });
  }

  get size(): number {
    return this.undo.length;
  }

  async compensate(): Promise<CompensationFailure[]> {
    const failures: CompensationFailure[] = [];
    await CancellationScope.nonCancellable(async () => {
      while (this.undo.length > 0) {
        const { step, fn } = this.undo.pop()!;
        try {
          await fn();
        } catch (err) {
          failures.push({ step, error: rootMessage(err) });
        }
      }
    });
    return failures;
  }
}
