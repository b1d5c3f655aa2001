import { createHash, randomBytes } from 'node:crypto';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import {
  ApplyExit,
  candidatePath,
  EXIT_ABSENT,
  existingArgv,
  inFlightArgv,
  mkdirsArgv,
  readFileArgv,
  statusArgv,
  stopArgv,
  writeThenApplyArgv,
} from './commands';

/**
 * Runs the proxy commands on a proxy host and turns their outcomes into results or typed
 * failures. Decides nothing about what to change: that is the activities' part.
 */

const QUICK_MS = 30_000;
/** The apply transaction: up to 60 s for the lock, nginx -t, then up to 15 s for the reload. */
const APPLY_MS = 120_000;

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export async function makeDirs(fleet: Fleet, host: string): Promise<void> {
  await fleet.pool.exec(host, mkdirsArgv(), { ...activityIO(), timeoutMs: QUICK_MS });
}

/** A file's content, or null if it does not exist. */
export async function readRemoteFile(fleet: Fleet, host: string, path: string): Promise<string | null> {
  const r = await fleet.pool.exec(host, readFileArgv(path), {
    ...activityIO(),
    timeoutMs: QUICK_MS,
    check: false,
  });
  if (r.code === 0) return r.stdout;
  if (r.code === EXIT_ABSENT) return null;
  throw failure(FailureType.CommandFailed, `${host}: cannot read ${path}: ${r.stderr.trim().slice(-300)}`, {
    host,
    path,
    code: r.code,
  });
}

/** Those of `paths` that exist on the host. */
export async function existingFiles(fleet: Fleet, host: string, paths: string[]): Promise<string[]> {
  const r = await fleet.pool.exec(host, existingArgv(paths), { ...activityIO(), timeoutMs: QUICK_MS });
  return r.stdout.split('\n').filter(Boolean);
}

export interface FileChange {
  live: string;
  /** The new content, or null to delete the file. */
  content: string | null;
}

export interface ApplyOutcome {
  changed: boolean;
  reloaded: boolean;
  started: boolean;
  /** With waitInFlightSeconds: the nginx workers still finishing requests when the wait ended. */
  lingering?: number;
}

export class GuardMismatch extends Error {}

/**
 * Write each new content to a fresh candidate next to its live file, then run the apply
 * transaction (see APPLY_SCRIPT): test with `nginx -t`, roll back on failure, reload on success.
 */
export async function applyChange(
  fleet: Fleet,
  host: string,
  change: {
    files: FileChange[];
    start: boolean;
    guard?: { path: string; sha256: string };
    what: string;
    /** See ApplyArgs.onlyAddsCapacity. */
    onlyAddsCapacity?: boolean;
    /** Then wait for the requests in flight, this long at most (IN_FLIGHT_SCRIPT), in the same command. */
    waitInFlightSeconds?: number;
  },
): Promise<ApplyOutcome> {
  const io = activityIO();
  const nonce = randomBytes(8).toString('hex');
  const files = change.files.map((f) => ({
    live: f.live,
    content: f.content,
    candidate: f.content === null ? null : candidatePath(f.live, nonce),
  }));
  const args = {
    start: change.start,
    guard: change.guard,
    onlyAddsCapacity: change.onlyAddsCapacity,
    files: files.map(({ candidate, live }) => ({ candidate, live })),
  };
  const contents = files.filter((f) => f.candidate !== null).map((f) => Buffer.from(f.content!, 'utf8'));
  // the candidates on the apply command's stdin: one round trip for the whole change
  const r = await fleet.pool.exec(
    host,
    writeThenApplyArgv(
      args,
      contents.map((c) => c.length),
      change.waitInFlightSeconds,
    ),
    {
      ...io,
      stdin: Buffer.concat(contents),
      timeoutMs: APPLY_MS + (change.waitInFlightSeconds ?? 0) * 1000,
      check: false,
    },
  );
  const out = r.stdout.trim();
  const err = r.stderr.trim();
  const nginxSays = err.slice(-1500);
  switch (r.code) {
    case 0: {
      // the apply's line, then (with the wait) the in-flight count on a line of its own
      const lines = out.split('\n');
      const lingering =
        change.waitInFlightSeconds === undefined
          ? undefined
          : inFlightCount(host, lines.length >= 2 ? lines.at(-1)! : '', out, change.what);
      return {
        changed: lines[0]!.startsWith('changed'),
        reloaded: lines[0]!.includes('reloaded'),
        started: lines[0]!.includes('started'),
        ...(lingering === undefined ? {} : { lingering }),
      };
    }
    case ApplyExit.GuardMismatch:
      throw new GuardMismatch(err);
    case ApplyExit.LockTimeout:
      throw failure(FailureType.CommandTimeout, `${host}: ${change.what}: ${err}`, { host });
    case ApplyExit.NotSetUp:
      throw failure(FailureType.Conflict, `${host}: ${change.what}: ${err}`, { host });
    case ApplyExit.ServerNameConflict:
      throw failure(
        FailureType.Conflict,
        `${host}: ${change.what}: a domain is already routed to another site; nothing was changed: ${lastLine(err)}`,
        { host, nginx: nginxSays },
      );
    case ApplyExit.ConfigRejected:
      throw failure(
        FailureType.CommandFailed,
        `${host}: ${change.what}: nginx rejected the new configuration; the previous one is still in place: ${lastLine(err)}`,
        { host, nginx: nginxSays },
      );
    case ApplyExit.ReloadFailed:
      throw failure(FailureType.CommandFailed, `${host}: ${change.what}: ${lastLine(err)}`, {
        host,
        nginx: nginxSays,
      });
    default:
      throw failure(
        FailureType.CommandFailed,
        `${host}: ${change.what}: the change script exited ${r.code ?? 'by signal ' + r.signal}: ${lastLine(err)}`,
        { host, stderr: nginxSays },
      );
  }
}

/**
 * IN_FLIGHT_SCRIPT on the host: wait (at most `timeoutSeconds`) until the nginx workers told to
 * shut down have exited; how many still run then.
 */
export async function waitInFlightOn(fleet: Fleet, host: string, timeoutSeconds: number): Promise<number> {
  const r = await fleet.pool.exec(host, inFlightArgv(timeoutSeconds), {
    ...activityIO(),
    timeoutMs: (timeoutSeconds + 30) * 1000,
  });
  const out = r.stdout.trim();
  return inFlightCount(host, out, out);
}

/** The count IN_FLIGHT_SCRIPT printed (`line`), or a CommandFailed quoting `printed`. */
function inFlightCount(host: string, line: string, printed: string, what?: string): number {
  if (!/^\d+$/.test(line))
    throw failure(
      FailureType.CommandFailed,
      `${host}: ${what ? `${what}: ` : ''}the in-flight wait printed ${JSON.stringify(printed)}`,
      { host },
    );
  return Number(line);
}

/** The running master and its workers, or null if the proxy's nginx is not running. */
export async function proxyProcesses(
  fleet: Fleet,
  host: string,
): Promise<{ master: number; workers: number[] } | null> {
  const r = await fleet.pool.exec(host, statusArgv(), { ...activityIO(), timeoutMs: QUICK_MS });
  const pids = r.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
  if (pids.length === 0) return null;
  return { master: pids[0]!, workers: pids.slice(1) };
}

export async function stopNginx(fleet: Fleet, host: string, graceSeconds: number): Promise<boolean> {
  const r = await fleet.pool.exec(host, stopArgv(graceSeconds), {
    ...activityIO(),
    timeoutMs: (graceSeconds + 15) * 1000,
  });
  return r.stdout.trim() === 'stopped';
}

function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim());
  // nginx ends a failed test with "configuration file ... test failed": the line before says why
  const why = lines.filter((l) => !/test failed|test is successful|syntax is ok/.test(l));
  return (why[why.length - 1] ?? lines[lines.length - 1] ?? '').slice(0, 400);
}
