import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * `npm run build` into a temporary app directory laid out like the image (/app/dist next to
 * /app/node_modules): what the container runs, compiled, without tsx.
 */
export function buildApp(): { appDir: string; main: string; remove: () => void } {
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-app-'));
  execFileSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'deploy/build.ts'), '--out', path.join(appDir, 'dist')],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(appDir, 'node_modules'));
  return {
    appDir,
    main: path.join(appDir, 'dist', 'workers', 'main.js'),
    remove: () => fs.rmSync(appDir, { recursive: true, force: true }),
  };
}

export interface WorkerProcess {
  child: ChildProcess;
  /** stdout so far, one JSON log object per line. */
  lines(): string[];
  stderr(): string;
  /** Resolves when a stdout line satisfies `test` (already seen or still to come). */
  waitForLine(test: (line: string) => boolean): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Run the compiled worker with exactly `env` (plus PATH): nothing leaks in from the test's environment. */
export function runWorker(main: string, env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [main], {
    cwd: path.dirname(main),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  const lines = () => out.split('\n').filter((l) => l.length > 0);
  const check = () => {
    for (const w of [...waiters]) {
      const hit = lines().find(w.test);
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitForLine: (test) =>
      new Promise<string>((resolve, reject) => {
        waiters.push({ test, resolve });
        check();
        void exited.then(({ code, signal }) =>
          reject(new Error(`worker exited (${code ?? signal}) first:\n${out}\n${err}`)),
        );
      }),
  };
}

/** A line's JSON, or a failure that shows the line. */
export function parseLine(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`not a JSON log line: ${line}`);
  }
}
