import { failure, FailureType } from '../errors';
import type { ProbeResult } from '../proxy/probe';

export interface HealthExpectation {
  domain: string;
  path: string;
  expectStatus: number;
  expectText?: string;
}

/** A short, single-line, printable excerpt of a body, for a failure message. */
export function excerpt(body: string, max = 160): string {
  // eslint-disable-next-line no-control-regex -- control characters have no place in a message
  const flat = body.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max) + '…' : flat;
}

/**
 * Whether a probe through the proxy is what the site should answer: the expected status and,
 * if given, the expected text in the body (its first 512 characters). A mismatch is Unhealthy
 * (retryable: a site that is starting, or a proxy that is reloading, may pass on the next try),
 * naming the status and a short excerpt of what came back.
 */
export function judgeProbe(
  probe: ProbeResult,
  e: HealthExpectation,
  /** The host whose answer this is (the proxy, or the backend probed from it). */
  host?: string,
): { status: number; ms: number } {
  const where = `http://${e.domain}${e.path}`;
  if (probe.status !== e.expectStatus)
    throw failure(
      FailureType.Unhealthy,
      `${where} answered ${probe.status}, not ${e.expectStatus}` +
        (probe.siteState ? ` (proxy says the site is ${probe.siteState})` : '') +
        `: ${excerpt(probe.bodyExcerpt)}`,
      {
        host,
        domain: e.domain,
        path: e.path,
        status: probe.status,
        expected: e.expectStatus,
        excerpt: excerpt(probe.bodyExcerpt, 500),
      },
    );
  if (e.expectText !== undefined && !probe.bodyExcerpt.includes(e.expectText))
    throw failure(
      FailureType.Unhealthy,
      `${where} answered ${probe.status} without ${JSON.stringify(e.expectText)}: ${excerpt(probe.bodyExcerpt)}`,
      {
        host,
        domain: e.domain,
        path: e.path,
        status: probe.status,
        expectText: e.expectText,
        excerpt: excerpt(probe.bodyExcerpt, 500),
      },
    );
  return { status: probe.status, ms: probe.elapsedMs };
}
