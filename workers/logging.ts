import type { LogLevel, Logger } from '@temporalio/common';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';

/**
 * Structured logs: one JSON object per line on stdout, for whatever collects the containers'
 * output (Loki, CloudWatch, journald). Every line has `time`, `level` and `msg`; the SDK adds the
 * context it runs in: an activity's `activityId`, `activityType`, `attempt`, `workflowId`,
 * `workflowRunId` and `workflowType`, a workflow's `workflowId`, `runId` and `workflowType`. Both
 * also carry `runId` here, so one query finds every line of a run.
 *
 * Secrets never reach the log: a field whose name says it holds one (password, secret, token, key,
 * authorization, cookie, credential) is replaced by "[redacted]", at any depth.
 */

const SECRET_KEY = /pass(word|phrase)?|secret|token|private|api.?key|^key$|authorization|cookie|credential/i;
const MAX_DEPTH = 6;

function errorFields(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message, stack: err.stack };
  const extra = err as Error & { type?: unknown; cause?: unknown; failure?: unknown };
  if (extra.type !== undefined) out.type = extra.type;
  if (extra.cause !== undefined) out.cause = extra.cause;
  return out;
}

/** A JSON-safe copy of `value`: secrets redacted, errors spelled out, cycles and buffers cut. */
export function sanitize(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    return value;
  }
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[deep]';
  seen.add(value);
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.length} bytes]`;
  const source = value instanceof Error ? errorFields(value) : value;
  if (Array.isArray(source)) return source.map((v) => sanitize(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    out[k] = SECRET_KEY.test(k) && v !== null && v !== '' ? '[redacted]' : sanitize(v, depth + 1, seen);
  }
  return out;
}

/** One log line (no trailing newline). */
export function formatLine(entry: LogEntry): string {
  const meta = (sanitize(entry.meta ?? {}) ?? {}) as Record<string, unknown>;
  if (meta.runId === undefined && meta.workflowRunId !== undefined) meta.runId = meta.workflowRunId;
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  // time, level and msg first and never overwritten by a field of the same name
  return JSON.stringify({ ...meta, time, level: entry.level.toLowerCase(), msg: entry.message });
}

/**
 * The process's logger: the SDK's (Runtime.install({ logger })), and the one the process's own
 * messages go through. Lines below `level` are dropped.
 */
export function jsonLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line + '\n'),
): Logger {
  return new DefaultLogger(level, (entry) => write(formatLine(entry)));
}
