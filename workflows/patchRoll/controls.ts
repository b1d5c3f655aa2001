import { setHandler } from '@temporalio/workflow';
import {
  abortSignal,
  abortUpdate,
  approveSignal,
  approveUpdate,
  patchProgressQuery,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  skipHostSignal,
  skipHostUpdate,
  type AbortRequest,
  type HostState,
  type RollStatus,
} from '../../protocol/patchRoll';
import type { RollState } from './state';

interface Control<A extends unknown[], R> {
  /** Throws why the control does not apply now (the Update's refusal). */
  validate(...a: A): void;
  run(...a: A): R;
}

const refuse = (why: string): never => {
  throw new Error(why);
};

/** What each of ops' controls checks and does to the roll. */
function controlsOf(roll: RollState) {
  const { progress } = roll;
  const approve: Control<[], RollStatus> = {
    validate: () => {
      if (roll.finished()) refuse(`the roll is ${progress.status}`);
      if (progress.canary.approved) refuse('already approved (or no canary)');
    },
    run: () => {
      progress.canary.approved = true;
      return progress.status;
    },
  };
  const pause: Control<[], RollStatus> = {
    validate: () => {
      if (roll.finished() || roll.abortReason)
        refuse(`the roll is ${roll.abortReason ? 'aborting' : progress.status}`);
      if (progress.paused) refuse('already paused');
    },
    run: () => {
      progress.paused = true;
      return progress.status;
    },
  };
  const resume: Control<[], RollStatus> = {
    validate: () => {
      if (!progress.paused) refuse('not paused');
    },
    run: () => {
      progress.paused = false;
      return progress.status;
    },
  };
  const abort: Control<[AbortRequest], RollStatus> = {
    validate: () => {
      if (roll.finished()) refuse(`the roll is ${progress.status}`);
      if (roll.abortReason) refuse('already aborting');
    },
    run: (o) => {
      roll.abortReason = `aborted by ops${o?.reason ? `: ${o.reason.slice(0, 200)}` : ''}`;
      progress.stopReason = roll.abortReason;
      return progress.status;
    },
  };
  const skipHost: Control<[{ host: string }], HostState> = {
    validate: (o) => {
      const hp = progress.hosts[o?.host];
      if (!hp) refuse(`${o?.host} is not in this roll`);
      else if (!['pending', 'waiting-for-locks', 'draining'].includes(hp.state))
        refuse(`${o.host} is ${hp.state}: only a host whose patch has not started can be skipped`);
    },
    run: (o) => {
      const hp = progress.hosts[o.host]!;
      const inRunningBatch =
        roll.batchRunning && progress.batches[progress.currentBatch - 1]?.includes(o.host);
      if (hp.state === 'pending' && !inRunningBatch) {
        hp.state = 'skipped';
        hp.reason = 'skipped by ops';
        hp.leftAs = 'untouched';
        roll.refresh();
      } else roll.skipRequested.add(o.host); // the host's last look before its patch skips it
      return hp.state;
    },
  };
  return { approve, pause, resume, abort, skipHost };
}

/** The control as a Signal: one that does not apply is ignored (the Update says why). */
function asSignal<A extends unknown[]>(c: Control<A, unknown>) {
  return (...a: A) => {
    try {
      c.validate(...a);
    } catch {
      return;
    }
    c.run(...a);
  };
}

/**
 * Ops steer the roll while it runs: the `progress` query, and each control (approve, pause,
 * resume, abort, skipHost) both an Update (validated: a refusal says why) and a Signal of the same name.
 */
export function handleControls(roll: RollState): void {
  const c = controlsOf(roll);
  setHandler(patchProgressQuery, () => roll.progress);
  setHandler(approveUpdate, c.approve.run, { validator: c.approve.validate });
  setHandler(pauseUpdate, c.pause.run, { validator: c.pause.validate });
  setHandler(resumeUpdate, c.resume.run, { validator: c.resume.validate });
  setHandler(abortUpdate, c.abort.run, { validator: c.abort.validate });
  setHandler(skipHostUpdate, c.skipHost.run, { validator: c.skipHost.validate });
  setHandler(approveSignal, asSignal(c.approve));
  setHandler(pauseSignal, asSignal(c.pause));
  setHandler(resumeSignal, asSignal(c.resume));
  setHandler(abortSignal, asSignal(c.abort));
  setHandler(skipHostSignal, asSignal(c.skipHost));
}
