import { openFleet, type Fleet } from '../activities/fleet';
import { CLIENT_KEY, INVENTORY, testbed } from '../test/testbed';

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
