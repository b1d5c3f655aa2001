import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import type { ProbeResult } from '../proxy/probe';

const EXCERPT = 512;

/**
 * One GET to a site's backend (an app host's address and the site's port), sent from the proxy
 * host over an SSH direct-tcpip channel: the same network path nginx takes, without sending the
 * request through nginx (where the backend is still drained). Proves a patched host's app answers
 * before it is readmitted. Needs `AllowTcpForwarding` on the proxy host's sshd (the test bed has
 * it). Any HTTP answer is a result; no answer at all is HostUnreachable (retryable). Read-only.
 */
export async function probeBackend(
  fleet: Fleet,
  o: {
    proxyHost: string;
    /** The backend's host name, when it is one of the fleet's (the failure names it). */
    backendHost?: string;
    address: string;
    port: number;
    domain: string;
    path: string;
    timeoutMs: number;
  },
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const t0 = Date.now();
  const where = `${o.address}:${o.port} (from ${o.proxyHost})`;
  const unreachable = (err: Error) =>
    failure(FailureType.HostUnreachable, `no HTTP answer from the backend ${where}: ${err.message}`, {
      host: o.backendHost ?? o.proxyHost,
      proxyHost: o.proxyHost,
      address: o.address,
      port: o.port,
    });
  const client = await fleet.pool.connection(o.proxyHost);
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    const timer = setTimeout(() => reject(unreachable(new Error('no channel in time'))), o.timeoutMs);
    client.forwardOut('127.0.0.1', 0, o.address, o.port, (err, ch) => {
      clearTimeout(timer);
      if (err) reject(unreachable(err));
      else resolve(ch);
    });
  });
  return new Promise<ProbeResult>((resolve, reject) => {
    const socket = channel as unknown as Duplex & Record<string, unknown>;
    for (const noop of ['setNoDelay', 'setKeepAlive', 'setTimeout', 'ref', 'unref'])
      socket[noop] ??= () => socket;
    const req = http.request(
      {
        createConnection: () => socket as never,
        method: 'GET',
        path: o.path,
        headers: { Host: o.domain, 'User-Agent': 'quartermaster-probe/1', Connection: 'close' },
        signal,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < EXCERPT) body += c;
        });
        res.on('error', (err) => reject(unreachable(err)));
        res.on('end', () => {
          clearTimeout(timer);
          channel.close();
          resolve({
            status: res.statusCode ?? 0,
            bodyExcerpt: body.slice(0, EXCERPT),
            elapsedMs: Date.now() - t0,
          });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      channel.close();
      reject(signal?.aborted ? (signal.reason ?? err) : unreachable(err));
    });
    req.end();
  });
}
