import http from 'node:http';
import type { Fleet } from '../../activities/fleet';
import { PROXY_PORT } from '../../activities/proxy/layout';

/**
 * A bounded load generator: visitors of one site, through the bed's proxy hosts, at a steady rate,
 * for a fixed number of requests. It targets only the proxy hosts of the fleet it is given (their
 * inventory addresses: the bed's), sends request n at start + n / rate (round robin over the
 * proxies, each on a fresh connection, as a new visitor would), never more than `total`, and stops
 * by itself; `stop()` ends it sooner. Every request's outcome is kept, with the visit id the site
 * says it wrote (the PHP site's pages answer JSON with `visit`).
 */

export type Outcome =
  /** 2xx from the site. */
  | 'served'
  /** The proxy's own 503 page (X-QM-Site-State: suspended or maintenance): by design, not an error. */
  | 'site-page'
  /** Any other 5xx. */
  | 'http-5xx'
  /** Any other status (4xx, 3xx). */
  | 'http-other'
  /** The connection was reset or closed before a whole answer. */
  | 'reset'
  /** No answer within the timeout. */
  | 'timeout'
  /** Any other failure to connect (refused, unreachable). */
  | 'error';

export const FAILED: readonly Outcome[] = ['http-5xx', 'reset', 'timeout', 'error'];

export interface RequestResult {
  n: number;
  /** The request id the site records (`?rid=`). */
  rid: string;
  proxy: string;
  path: string;
  /** When it was sent (ms since the epoch) and how long until the whole answer or the failure. */
  sentAt: number;
  ms: number;
  outcome: Outcome;
  status?: number;
  /** The visit id the site wrote (served requests of pages that record a visit). */
  visit?: number;
  /** What the page said it runs: release and schema version. */
  release?: string;
  schema?: string;
  /** X-QM-Site-State of a proxy page. */
  siteState?: string;
  error?: string;
}

export interface LoadOptions {
  /** The site's domain (Host header). */
  domain: string;
  /** Requests a second. */
  rate: number;
  /** The number of requests: the generator never sends more. */
  total: number;
  /** The share of requests to /slow (a page that takes 2 s), spread evenly. */
  slowShare?: number;
  /** Per request: no whole answer within this is a timeout (default 10 s). */
  timeoutMs?: number;
  /** Request ids are `<tag>-<n>`. */
  tag: string;
}

export interface Load {
  /** Resolves once every request sent has its outcome (after `total`, or after stop()). */
  readonly done: Promise<RequestResult[]>;
  /** Send no more requests; the outcomes of all sent. */
  stop(): Promise<RequestResult[]>;
  /** The outcomes so far. */
  readonly results: readonly RequestResult[];
}

const MAX_RATE = 200;
const MAX_TOTAL = 20_000;

export function startLoad(fleet: Fleet, opts: LoadOptions): Load {
  const proxies = fleet.hosts.filter((h) => h.roles.includes('proxy')).map((h) => h.address);
  if (!proxies.length) throw new Error('the fleet has no proxy host');
  if (!(opts.rate > 0 && opts.rate <= MAX_RATE)) throw new Error(`rate: 0 < rate <= ${MAX_RATE}`);
  if (!(Number.isInteger(opts.total) && opts.total > 0 && opts.total <= MAX_TOTAL))
    throw new Error(`total: a whole number in 1..${MAX_TOTAL}`);
  const slowEvery = opts.slowShare ? Math.round(1 / opts.slowShare) : 0;
  const results: RequestResult[] = [];
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let wake: (() => void) | undefined;
  const t0 = Date.now();

  const run = async () => {
    for (let n = 0; n < opts.total && !stopped; n++) {
      const due = t0 + (n * 1000) / opts.rate;
      if (due > Date.now())
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, due - Date.now());
        });
      if (stopped) break;
      const path = slowEvery && n % slowEvery === slowEvery - 1 ? '/slow' : '/';
      const p = request(proxies[n % proxies.length]!, opts, n, path).then((r) => {
        results.push(r);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    while (inFlight.size) await Promise.all([...inFlight]);
    return results.sort((a, b) => a.n - b.n);
  };
  const done = run();
  return {
    done,
    results,
    stop() {
      stopped = true;
      wake?.();
      return done;
    },
  };
}

function request(proxy: string, opts: LoadOptions, n: number, path: string): Promise<RequestResult> {
  const rid = `${opts.tag}-${n}`;
  const sentAt = Date.now();
  const base = { n, rid, proxy, path, sentAt };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<RequestResult, keyof typeof base | 'ms'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...base, ms: Date.now() - sentAt, ...r });
    };
    const req = http.request(
      {
        host: proxy,
        port: PROXY_PORT,
        method: 'GET',
        path: `${path}?rid=${encodeURIComponent(rid)}`,
        agent: false,
        headers: { Host: opts.domain, 'User-Agent': 'quartermaster-load/1', Connection: 'close' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err: NodeJS.ErrnoException) => finish(failed(err)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const siteState = res.headers['x-qm-site-state'] as string | undefined;
          if (status >= 200 && status < 300) {
            let page: { visit?: number; release?: string; schema?: string } = {};
            try {
              page = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof page;
            } catch {
              // a page that is not the PHP site's JSON: served, without a visit
            }
            finish({
              outcome: 'served',
              status,
              visit: page.visit,
              release: page.release,
              schema: page.schema,
            });
          } else if (status === 503 && siteState) finish({ outcome: 'site-page', status, siteState });
          else
            finish({
              outcome: status >= 500 ? 'http-5xx' : 'http-other',
              status,
              error: Buffer.concat(chunks).toString('utf8').slice(0, 200),
            });
        });
      },
    );
    // the whole answer within timeoutMs, or a timeout (a slow answer is not allowed to trickle on)
    const timer = setTimeout(() => {
      finish({ outcome: 'timeout', error: `no whole answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => finish(failed(err)));
    req.end();
  });
}

function failed(
  err: NodeJS.ErrnoException,
): Omit<RequestResult, 'n' | 'rid' | 'proxy' | 'path' | 'sentAt' | 'ms'> {
  const reset =
    err.code === 'ECONNRESET' || err.code === 'EPIPE' || /socket hang up|aborted/i.test(err.message);
  return { outcome: reset ? 'reset' : 'error', error: `${err.code ?? ''} ${err.message}`.trim() };
}

export interface LoadSummary {
  sent: number;
  served: number;
  failed: number;
  /** Counts by outcome. */
  outcomes: Partial<Record<Outcome, number>>;
  /** Latency of the served requests, ms. */
  p50: number;
  p99: number;
  /** The failed requests, for a failure message. */
  failures: string[];
}

export function summarize(results: readonly RequestResult[]): LoadSummary {
  const outcomes: Partial<Record<Outcome, number>> = {};
  for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  const served = results.filter((r) => r.outcome === 'served').map((r) => r.ms);
  const failures = results.filter((r) => FAILED.includes(r.outcome));
  return {
    sent: results.length,
    served: served.length,
    failed: failures.length,
    outcomes,
    p50: percentile(served, 50),
    p99: percentile(served, 99),
    failures: failures
      .slice(0, 20)
      .map(
        (r) =>
          `#${r.n} ${r.path} via ${r.proxy} at +${r.sentAt}: ${r.outcome} ${r.status ?? ''} ${r.error ?? ''}`,
      ),
  };
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** The served requests that said which visit they wrote: request id → visit id. */
export function acknowledgedWrites(results: readonly RequestResult[]): Map<string, number> {
  return new Map(
    results.filter((r) => r.outcome === 'served' && r.visit !== undefined).map((r) => [r.rid, r.visit!]),
  );
}
