import http from 'node:http';
import type { Duplex } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { activityIO } from '../context';
import { FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { excerpt, judgeProbe, type HealthExpectation } from '../site/health';
import type { ProbeResult } from '../proxy/probe';

/**
 * One GET to a backend (an app host's address and port) from a proxy host: the TCP connection is
 * opened by the proxy host's sshd (an SSH direct-tcpip channel), so it takes the path nginx takes,
 * firewalls included. With the site's domain as Host. Any HTTP answer is a result.
 */
async function probeFrom(
  fleet: Fleet,
  proxyHost: string,
  target: { address: string; port: number },
  e: HealthExpectation,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const client = await fleet.pool.connection(proxyHost);
  const t0 = Date.now();
  const channel = await new Promise<Duplex>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no connection to ${target.address}:${target.port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    client.forwardOut('127.0.0.1', 0, target.address, target.port, (err, ch) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(ch);
    });
  });
  return new Promise<ProbeResult>((resolve, reject) => {
    const req = http.request(
      {
        method: 'GET',
        path: e.path,
        createConnection: () => channel as never,
        headers: { Host: e.domain, 'User-Agent': 'quartermaster-probe/1', Connection: 'close' },
        timeout: timeoutMs,
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          channel.destroy();
          resolve({
            status: res.statusCode ?? 0,
            bodyExcerpt: Buffer.concat(chunks).toString('utf8').slice(0, 512),
            elapsedMs: Date.now() - t0,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      channel.destroy();
      reject(err);
    });
    req.end();
  });
}

/**
 * Wait until a backend answers its health check as seen from the proxy host, polling every 500 ms
 * for up to `timeoutMs`. Read-only, so safe to repeat. Still unhealthy at the deadline is a
 * non-retryable Unhealthy (the deadline was the patience; a retry would only double it), naming
 * the last answer or error.
 */
export async function waitBackendHealthy(
  fleet: Fleet,
  i: {
    proxyHost: string;
    backend: { host: string; address: string; port: number };
    expect: HealthExpectation;
    timeoutMs: number;
  },
): Promise<{ status: number; tries: number }> {
  const { signal, onActivity } = activityIO();
  const deadline = Date.now() + i.timeoutMs;
  let last = '';
  for (let tries = 1; ; tries++) {
    onActivity?.();
    try {
      const probe = await probeFrom(fleet, i.proxyHost, i.backend, i.expect, 3000, signal);
      return { status: judgeProbe(probe, i.expect, i.backend.host).status, tries };
    } catch (err) {
      if (signal?.aborted) throw err;
      if (err instanceof ApplicationFailure && err.nonRetryable) throw err;
      last = excerpt(err instanceof Error ? err.message : String(err), 300);
    }
    if (Date.now() + 500 > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const where = `${i.backend.host} (${i.backend.address}:${i.backend.port})`;
  throw ApplicationFailure.create({
    type: FailureType.Unhealthy,
    message: `${where} is not healthy from ${i.proxyHost} after ${i.timeoutMs} ms: ${last}`,
    details: [{ proxyHost: i.proxyHost, ...i.backend, path: i.expect.path }],
    nonRetryable: true,
  });
}
