import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** The SDK's Prometheus exporter (loopback), re-served after the platform's metrics. */
  sdkMetricsUrl?: string;
  /** /healthz answers 200 while this is true (the worker is running), else 503. */
  healthy: () => boolean;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's HTTP endpoint, for Prometheus and the container healthcheck:
 *   GET /metrics  the platform's metrics, then the SDK's (one scrape target per worker);
 *                 `qm_sdk_metrics_up` says whether the SDK's part could be read;
 *   GET /healthz  200 `ok` while the worker runs, 503 while it starts or drains.
 * Nothing else, and nothing that changes state.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    void handle(opts, req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(opts: MetricsServerOptions, req: http.IncomingMessage, res: http.ServerResponse) {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  if (path === '/healthz') {
    const ok = opts.healthy();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not running\n');
    return;
  }
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
    return;
  }
  const [own, sdk] = await Promise.all([opts.registry.metrics(), sdkMetrics(opts.sdkMetricsUrl)]);
  const up = !opts.sdkMetricsUrl
    ? ''
    : [
        '# HELP qm_sdk_metrics_up Whether the SDK (Temporal core) metrics could be read for this scrape',
        '# TYPE qm_sdk_metrics_up gauge',
        `qm_sdk_metrics_up ${sdk === undefined ? 0 : 1}`,
        '',
      ].join('\n');
  res.writeHead(200, { 'content-type': opts.registry.contentType });
  res.end(`${own}\n${up}${sdk ?? ''}`);
}

async function sdkMetrics(url: string | undefined): Promise<string | undefined> {
  if (!url) return undefined;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return r.ok ? await r.text() : undefined;
  } catch {
    return undefined;
  }
}
