import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CLIENT_KEY, INVENTORY } from '../../dev/fleet';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * The real worker (workers/main.ts) as its own OS process, so a test can SIGKILL it mid-operation
 * the way a crash or an OOM kill would, and start another. `prebuiltBundle`: on the workflow
 * bundle the jest setup built (as production workers run on dist/workflow-bundle.js), which
 * starts in a second or two instead of bundling the workflows anew (without the metrics
 * interceptors: for tests that start many workers and read no workflow metrics).
 */
export async function startWorkerProcess(
  taskQueue: string,
  opts: { prebuiltBundle?: boolean } = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'workers/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS,
      QM_TASK_QUEUE: taskQueue,
      QM_INVENTORY: INVENTORY,
      QM_SSH_KEY: CLIENT_KEY,
      ...(opts.prebuiltBundle ? { QM_WORKFLOW_BUNDLE: process.env.QM_TEST_WORKFLOW_BUNDLE } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${output}`)), 60_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes('worker on task queue')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  child.removeAllListeners('exit');
  return child;
}

export async function killWorker(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await gone;
}
