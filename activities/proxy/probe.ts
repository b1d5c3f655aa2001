import http from 'node:http';
import { failure, FailureType } from '../errors';
import { PROXY_PORT } from './layout';

export interface ProbeResult {
  status: number;
  /** The first 512 characters of the body. */
  bodyExcerpt: string;
  /** Retry-After and X-QM-Site-State, when the proxy answered with one of its own pages. */
  retryAfter?: string;
  siteState?: string;
  elapsedMs: number;
}

const EXCERPT = 512;
const MAX_BODY = 64 * 1024;

/**
 * One GET through the proxy, from the worker: to the proxy host's own address (from the
 * inventory, never from input) with the site's domain as Host, on a fresh connection (no agent),
 * so what it sees is what a new visitor sees. Any HTTP answer is a result (the caller decides what
 * is healthy); no answer at all is HostUnreachable (retryable).
 */
export function probeThroughProxy(opts: {
  address: string;
  domain: string;
  path: string;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<ProbeResult> {
  const t0 = Date.now();
  return new Promise<ProbeResult>((resolve, reject) => {
    const req = http.request(
      {
        host: opts.address,
        port: PROXY_PORT,
        method: 'GET',
        path: opts.path,
        agent: false,
        headers: { Host: opts.domain, 'User-Agent': 'quartermaster-probe/1', Connection: 'close' },
        timeout: opts.timeoutMs,
        signal: opts.signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_BODY) chunks.push(c);
          size += c.length;
        });
        res.on('error', fail);
        res.on('end', () => {
          const header = (name: string) => {
            const v = res.headers[name];
            return Array.isArray(v) ? v.join(', ') : v;
          };
          resolve({
            status: res.statusCode ?? 0,
            bodyExcerpt: Buffer.concat(chunks).toString('utf8').slice(0, EXCERPT),
            retryAfter: header('retry-after'),
            siteState: header('x-qm-site-state'),
            elapsedMs: Date.now() - t0,
          });
        });
      },
    );
    function fail(err: Error & { code?: string }) {
      if (opts.signal?.aborted) return reject(opts.signal.reason ?? err);
      reject(
        failure(
          FailureType.HostUnreachable,
          `no HTTP answer from the proxy at ${opts.address}:${PROXY_PORT} for ${opts.domain}: ${err.message}`,
          { address: opts.address, domain: opts.domain, code: err.code },
        ),
      );
    }
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    );
    req.on('error', fail);
    req.end();
  });
}
