import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Request signatures, shared by the API (verify), the billing system and the Git webhook (sign):
 *
 *     X-QM-Timestamp: <unix seconds>
 *     X-QM-Signature: v1=<hex HMAC-SHA256(secret, `${timestamp}.${METHOD} ${path}\n${rawBody}`)>
 *
 * `path` is the request target exactly as sent (with its query string). The method and path are
 * signed as well as the body: over the body alone, every body-less request (GET, DELETE, an empty
 * suspend) signed in the same second would carry the same signature, and a captured signature of
 * `GET /v1/sites/a` would authorize `DELETE /v1/sites/b`. The newline cannot occur in a method or
 * a path, so no two requests sign the same text.
 *
 * A signature is good for ±5 minutes around its timestamp; the API also refuses a signature it
 * has already accepted (ReplayGuard). Up to two secrets are valid at once, so a secret can rotate
 * without downtime: add the new one, move the signers over, remove the old one.
 */

export const TIMESTAMP_HEADER = 'x-qm-timestamp';
export const SIGNATURE_HEADER = 'x-qm-signature';
export const SIGNATURE_WINDOW_SECONDS = 5 * 60;
const SCHEME = 'v1=';

/** What is signed: the method, the request target and the exact bytes of the body. */
export interface SignedRequest {
  method: string;
  /** The request target as sent: `/v1/sites/acme/suspend?x=1`. */
  path: string;
  body: Buffer | string;
}

const hmac = (secret: string, timestamp: string, req: SignedRequest): Buffer =>
  createHmac('sha256', secret)
    .update(`${timestamp}.${req.method.toUpperCase()} ${req.path}\n`)
    .update(req.body)
    .digest();

/**
 * The headers that sign `req` with `secret` at `timestamp` (unix seconds, now by default).
 */
export function sign(
  secret: string,
  req: SignedRequest,
  timestamp: number = Math.floor(Date.now() / 1000),
): { 'X-QM-Timestamp': string; 'X-QM-Signature': string } {
  const ts = String(Math.floor(timestamp));
  return { 'X-QM-Timestamp': ts, 'X-QM-Signature': `${SCHEME}${hmac(secret, ts, req).toString('hex')}` };
}

export type Verdict =
  | {
      ok: true;
      /** The signature's digest, hex: what a replay guard remembers. */ digest: string;
      expiresAt: number;
    }
  | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'future' | 'mismatch' };

/** Is the timestamp header well-formed and inside the window? (Checked before a body is read.) */
export function checkTimestamp(
  timestamp: string | string[] | undefined,
  nowSeconds: number,
): { ok: true; ts: number } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'future' } {
  if (timestamp === undefined) return { ok: false, reason: 'missing' };
  if (typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, reason: 'malformed' };
  const ts = Number(timestamp);
  if (ts < nowSeconds - SIGNATURE_WINDOW_SECONDS) return { ok: false, reason: 'expired' };
  if (ts > nowSeconds + SIGNATURE_WINDOW_SECONDS) return { ok: false, reason: 'future' };
  return { ok: true, ts };
}

/** Verify a request's signature against every valid secret, in constant time. */
export function verify(
  headers: { timestamp: string | string[] | undefined; signature: string | string[] | undefined },
  req: SignedRequest,
  secrets: readonly string[],
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Verdict {
  if (headers.signature === undefined) return { ok: false, reason: 'missing' };
  const time = checkTimestamp(headers.timestamp, nowSeconds);
  if (!time.ok) return time;
  const sig = headers.signature;
  if (typeof sig !== 'string' || !sig.startsWith(SCHEME)) return { ok: false, reason: 'malformed' };
  const hex = sig.slice(SCHEME.length);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(hex, 'hex');
  let match = false;
  // Every secret is tried (no early exit), each comparison on two 32-byte buffers.
  for (const secret of secrets) {
    const expected = hmac(secret, headers.timestamp as string, req);
    if (expected.length === given.length && timingSafeEqual(expected, given)) match = true;
  }
  if (!match) return { ok: false, reason: 'mismatch' };
  return { ok: true, digest: given.toString('hex'), expiresAt: time.ts + SIGNATURE_WINDOW_SECONDS };
}
