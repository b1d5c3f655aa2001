import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Request signatures, shared by the API (verify), the billing system and the Git webhook (sign):
 *
 *     X-QM-Timestamp: <unix seconds>
 *     X-QM-Nonce:     <16-64 letters, digits, _ or -, new for every request>
 *     X-QM-Signature: v1=<hex HMAC-SHA256(secret, `${timestamp}.${nonce}.${METHOD} ${path}\n${rawBody}`)>
 *
 * `path` is the request target exactly as sent (with its query string). The method and path are
 * signed as well as the body: over the body alone, every body-less request (GET, DELETE, an empty
 * suspend) would carry the same signature, and a captured signature of `GET /v1/sites/a` would
 * authorize `DELETE /v1/sites/b`. Neither the timestamp (digits) nor the nonce (no dot) can hold a
 * dot, and the newline cannot occur in a method or a path, so no two requests sign the same text.
 *
 * The nonce is what makes a request its own: the API accepts a nonce once (ReplayGuard), so a
 * captured request cannot be sent again, while a client retrying a write at once (same body, same
 * second, same Idempotency-Key) signs it with a new nonce and gets the same operation back.
 *
 * A signature is good for ±5 minutes around its timestamp. Up to two secrets are valid at once, so
 * a secret can rotate without downtime: add the new one, move the signers over, remove the old one.
 *
 * SIGNING below is that rule as data: the OpenAPI document publishes it (securitySchemes, and the
 * `x-qm-signing` extension), and the HMAC here is computed from the same template, so the contract
 * and the server cannot say different things.
 */

export const TIMESTAMP_HEADER = 'x-qm-timestamp';
export const NONCE_HEADER = 'x-qm-nonce';
export const SIGNATURE_HEADER = 'x-qm-signature';
export const SIGNATURE_WINDOW_SECONDS = 5 * 60;
const SCHEME = 'v1=';
const NONCE_PATTERN = '^[A-Za-z0-9_-]{16,64}$';
const NONCE_RE = new RegExp(NONCE_PATTERN);

/** How to sign, as published in the OpenAPI document (`x-qm-signing`). */
export const SIGNING = {
  algorithm: 'HMAC-SHA256',
  /** `{method}` upper case; `{path}` the request target as sent (path and query); `{body}` the raw bytes (empty when none). */
  signedText: '{timestamp}.{nonce}.{method} {path}\n{body}',
  signature: { header: 'X-QM-Signature', format: 'v1={hex}', encoding: 'hex, lower case' },
  timestamp: { header: 'X-QM-Timestamp', format: 'unix seconds', windowSeconds: SIGNATURE_WINDOW_SECONDS },
  nonce: {
    header: 'X-QM-Nonce',
    pattern: NONCE_PATTERN,
    rule: 'new for every request (e.g. 16 random bytes, hex); a nonce already accepted within the window is refused',
  },
} as const;

/** What is signed: the method, the request target and the exact bytes of the body. */
export interface SignedRequest {
  method: string;
  /** The request target as sent: `/v1/sites/acme/suspend?x=1`. */
  path: string;
  body: Buffer | string;
}

/** The signed text up to the body (SIGNING.signedText, whose last part is the body). */
function head(timestamp: string, nonce: string, req: SignedRequest): string {
  const values: Record<string, string> = {
    timestamp,
    nonce,
    method: req.method.toUpperCase(),
    path: req.path,
    body: '',
  };
  return SIGNING.signedText.replace(/\{(\w+)\}/g, (_m, name: string) => values[name]!);
}

const hmac = (secret: string, timestamp: string, nonce: string, req: SignedRequest): Buffer =>
  createHmac('sha256', secret)
    .update(head(timestamp, nonce, req))
    .update(req.body)
    .digest();

/** A fresh nonce: 16 random bytes, hex. */
export const newNonce = (): string => randomBytes(16).toString('hex');

/** A type, not an interface: it passes as a plain Record of headers. */
export type SignatureHeaders = {
  'X-QM-Timestamp': string;
  'X-QM-Nonce': string;
  'X-QM-Signature': string;
};

/**
 * The headers that sign `req` with `secret` at `timestamp` (unix seconds, now by default), with
 * `nonce` (a fresh one by default: every call signs a request of its own).
 */
export function sign(
  secret: string,
  req: SignedRequest,
  timestamp: number = Math.floor(Date.now() / 1000),
  nonce: string = newNonce(),
): SignatureHeaders {
  const ts = String(Math.floor(timestamp));
  return {
    'X-QM-Timestamp': ts,
    'X-QM-Nonce': nonce,
    'X-QM-Signature': `${SCHEME}${hmac(secret, ts, nonce, req).toString('hex')}`,
  };
}

export type Verdict =
  | {
      ok: true;
      /** The request's nonce: what a replay guard remembers. */
      nonce: string;
      expiresAt: number;
    }
  | {
      ok: false;
      reason:
        'missing' | 'malformed' | 'expired' | 'future' | 'mismatch' | 'nonce missing' | 'nonce malformed';
    };

/**
 * Are the timestamp and nonce headers well-formed, the timestamp inside the window? (Checked before
 * a body is read.)
 */
export function checkTimestamp(
  timestamp: string | string[] | undefined,
  nowSeconds: number,
  nonce?: { value: string | string[] | undefined },
):
  | { ok: true; ts: number }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'expired' | 'future' | 'nonce missing' | 'nonce malformed';
    } {
  if (timestamp === undefined) return { ok: false, reason: 'missing' };
  if (typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp))
    return { ok: false, reason: 'malformed' };
  const ts = Number(timestamp);
  if (ts < nowSeconds - SIGNATURE_WINDOW_SECONDS) return { ok: false, reason: 'expired' };
  if (ts > nowSeconds + SIGNATURE_WINDOW_SECONDS) return { ok: false, reason: 'future' };
  if (nonce) {
    if (nonce.value === undefined) return { ok: false, reason: 'nonce missing' };
    if (typeof nonce.value !== 'string' || !NONCE_RE.test(nonce.value))
      return { ok: false, reason: 'nonce malformed' };
  }
  return { ok: true, ts };
}

/** Verify a request's signature against every valid secret, in constant time. */
export function verify(
  headers: {
    timestamp: string | string[] | undefined;
    nonce: string | string[] | undefined;
    signature: string | string[] | undefined;
  },
  req: SignedRequest,
  secrets: readonly string[],
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Verdict {
  if (headers.signature === undefined) return { ok: false, reason: 'missing' };
  const time = checkTimestamp(headers.timestamp, nowSeconds, { value: headers.nonce });
  if (!time.ok) return time;
  const sig = headers.signature;
  if (typeof sig !== 'string' || !sig.startsWith(SCHEME)) return { ok: false, reason: 'malformed' };
  const hex = sig.slice(SCHEME.length);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return { ok: false, reason: 'malformed' };
  const given = Buffer.from(hex, 'hex');
  const nonce = headers.nonce as string;
  let match = false;
  // Every secret is tried (no early exit), each comparison on two 32-byte buffers.
  for (const secret of secrets) {
    const expected = hmac(secret, headers.timestamp as string, nonce, req);
    if (expected.length === given.length && timingSafeEqual(expected, given)) match = true;
  }
  if (!match) return { ok: false, reason: 'mismatch' };
  return { ok: true, nonce, expiresAt: time.ts + SIGNATURE_WINDOW_SECONDS };
}
