import { spawn } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { ensureDatabase } from '../activities/db/admin';
import { runSqlScript } from '../activities/db/client';
import { quoteString } from '../activities/db/commands';
import { openFleet, type Fleet } from '../activities/fleet';
import { CLIENT_KEY, INVENTORY, testbed } from '../dev/fleet';

/** Shared helpers for benchmarks: the test bed, timing, medians, RSS, and the closing JSON line. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Run `fn` `n` times (after `warmup` untimed runs); milliseconds per run. */
export async function sample(n: number, fn: () => Promise<unknown>, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timeIt(fn));
  return out;
}

/** Track this process's peak RSS while `fn` runs (sampled every 50 ms). */
export async function peakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, peakMb: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** The test bed's fleet (brought up if it is not). */
export function benchFleet(): Fleet {
  if (!testbed.isUp()) testbed.up();
  return openFleet({ inventoryPath: INVENTORY, privateKeyPath: CLIENT_KEY });
}

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The last line of every benchmark: its figures as one JSON object. */
export function report(name: string, figures: Record<string, unknown>) {
  console.log(JSON.stringify({ bench: name, date: new Date().toISOString(), ...figures }));
}

/** What a row of the revisions table below takes in InnoDB, roughly. */
const ROW_BYTES = 290;

/**
 * A database `db` on `host` with about `targetMb` of Drupal-revision-like rows (text that
 * compresses like real content: words, ids, hashes), generated in chunks of 250k rows and
 * resumable (a second run adds only what is missing); its size in bytes. After generating, it
 * waits for InnoDB to write back what that dirtied, so that the first dump does not pay for it.
 */
export async function ensureRevisionsDatabase(
  pool: Fleet['pool'],
  host: string,
  db: string,
  targetMb: number,
): Promise<number> {
  await ensureDatabase(pool, host, db);
  await runSqlScript(
    pool,
    host,
    'CREATE TABLE IF NOT EXISTS node_revision (' +
      ' id BIGINT PRIMARY KEY, uid INT NOT NULL, title VARCHAR(128) NOT NULL, body TEXT NOT NULL,' +
      ' changed DATETIME NOT NULL, KEY (uid)) ENGINE=InnoDB',
    { db },
  );
  const rowsWanted = Math.round((targetMb * 2 ** 20) / ROW_BYTES);
  const count = async () =>
    Number((await runSqlScript(pool, host, 'SELECT COALESCE(MAX(id), 0) FROM node_revision', { db }))[0]![0]);
  let have = await count();
  const t0 = Date.now();
  while (have < rowsWanted) {
    const to = Math.min(have + 250_000, rowsWanted);
    await runSqlScript(
      pool,
      host,
      'INSERT INTO node_revision SELECT seq, seq % 5000,' +
        " CONCAT('Revision ', seq, ' of ', MD5(seq % 100000))," +
        " CONCAT('<p>', ELT(1 + seq % 5, 'Lorem ipsum dolor sit amet', 'Donate now to support', 'Membership renewal for'," +
        " 'Event registration confirmed', 'Contribution receipt'), ' ', SHA2(seq, 256), ' ', MD5(seq * 7)," +
        ` ' contact ', seq % 100000, ' ', REPEAT(SUBSTR(MD5(seq), 1, 8), 6), '</p>'),` +
        " '2024-01-01' + INTERVAL (seq % 86400000) SECOND" +
        ` FROM seq_${have + 1}_to_${to}`,
      { db, timeoutMs: 10 * 60_000 },
    );
    have = to;
    process.stdout.write(
      `\rgenerating ${db}: ${have}/${rowsWanted} rows (${round((Date.now() - t0) / 1000, 0)} s)`,
    );
  }
  if (Date.now() > t0 + 1000) {
    process.stdout.write('\n');
    for (let i = 0; i < 300; i++) {
      const rows = await runSqlScript(pool, host, "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'");
      if (Number(rows[0]?.[1] ?? 0) < 100) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const size = await runSqlScript(
    pool,
    host,
    'ANALYZE TABLE node_revision;' +
      ' SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES' +
      ` WHERE TABLE_SCHEMA = ${quoteString(db)}`,
    { db },
  );
  return Number(size.at(-1)![0]);
}

/** Run a constant bash script (pipefail) with positional args and named values in its environment. */
export function shell(script: string, args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script, 'bench', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited ${code}`))));
  });
}

/**
 * With QM_BENCH_PROFILE=1: where a workflow's time went, from its history: each
 * activity (local ones from their markers: scheduled → completed), signal and workflow task, in
 * milliseconds from the start. Local activities run inside a workflow task, so their times are
 * the worker's; the markers themselves are written when the task completes.
 */
export async function printTimeline(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    t ? Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;
  const events = history.events ?? [];
  const t0 = ms(events[0]?.eventTime);
  const rows: [number, number, string][] = [];
  const scheduled = new Map<string, { at: number; type: string; startedAt?: number }>();
  for (const e of events) {
    const at = ms(e.eventTime) - t0;
    const m = e.markerRecordedEventAttributes;
    if (m) {
      const data = m.details?.data?.payloads?.[0]?.data;
      if (!data) continue;
      const d = JSON.parse(Buffer.from(data).toString()) as {
        activity_type: string;
        complete_time: { seconds: number; nanos: number };
        original_schedule_time: { seconds: number; nanos: number };
      };
      rows.push([ms(d.original_schedule_time) - t0, ms(d.complete_time) - t0, `local ${d.activity_type}`]);
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      scheduled.set(String(e.eventId), { at, type: a.activityType?.name ?? '?' });
    } else if (e.activityTaskStartedEventAttributes) {
      const s = scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId));
      if (s) s.startedAt = at;
    } else if (e.activityTaskCompletedEventAttributes || e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes!;
      const s = scheduled.get(String(a.scheduledEventId));
      const wait = s?.startedAt === undefined ? '' : ` (started after ${(s.startedAt - s.at).toFixed(0)} ms)`;
      if (s) rows.push([s.at, at, `activity ${s.type}${wait}`]);
    } else if (e.signalExternalWorkflowExecutionInitiatedEventAttributes) {
      rows.push([
        at,
        at,
        `signal out ${e.signalExternalWorkflowExecutionInitiatedEventAttributes.signalName}`,
      ]);
    } else if (e.workflowExecutionSignaledEventAttributes) {
      rows.push([at, at, `signal in ${e.workflowExecutionSignaledEventAttributes.signalName}`]);
    } else if (e.workflowTaskStartedEventAttributes) {
      rows.push([at, at, 'workflow task started']);
    }
  }
  rows.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  console.log(`timeline of ${workflowId} (ms from its start: scheduled → completed):`);
  for (const [from, to, what] of rows)
    console.log(
      `  ${from.toFixed(0).padStart(6)} → ${to.toFixed(0).padStart(6)} ${(to - from).toFixed(0).padStart(5)}  ${what}`,
    );
}

/** One ordinary activity of a workflow's history, as the server recorded it (ms from the workflow's start). */
export interface ActivityRun {
  type: string;
  /** Its (first) argument, decoded: the benchmarks' workers use the default data converter, no codec. */
  input: unknown;
  scheduledAt: number;
  /** When a worker picked up its last attempt. */
  startedAt: number;
  /** When it completed or failed for good. */
  closedAt: number;
}

/**
 * Every ordinary activity of a finished workflow, from its history: what it was asked, when it was
 * scheduled, started (its last attempt) and closed. started → closed is the activity's own time
 * on the worker (plus the report of its result), without the wait in the task queue.
 */
export async function activityRuns(client: Client, workflowId: string): Promise<ActivityRun[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    t ? Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6 : NaN;
  const events = history.events ?? [];
  const t0 = ms(events[0]?.eventTime);
  const scheduled = new Map<string, Omit<ActivityRun, 'closedAt' | 'startedAt'> & { startedAt?: number }>();
  const runs: ActivityRun[] = [];
  for (const e of events) {
    const at = ms(e.eventTime) - t0;
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const payload = s.input?.payloads?.[0];
      scheduled.set(String(e.eventId), {
        type: s.activityType?.name ?? '?',
        input: payload ? defaultPayloadConverter.fromPayload(payload) : undefined,
        scheduledAt: at,
      });
    } else if (e.activityTaskStartedEventAttributes) {
      const run = scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId));
      if (run) run.startedAt = at;
    } else if (e.activityTaskCompletedEventAttributes || e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes!;
      const run = scheduled.get(String(a.scheduledEventId));
      if (run) runs.push({ ...run, startedAt: run.startedAt ?? run.scheduledAt, closedAt: at });
    }
  }
  return runs;
}
