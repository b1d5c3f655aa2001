import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { describeIssues } from '../schema/common';
import { UNENCRYPTED_METADATA } from './payloadConverter';

/**
 * Payloads encrypted with AES-256-GCM before they reach Temporal, so workflow inputs, results,
 * signals, queries' answers and memos (site specs, customer data) are never stored in plain text
 * in its history. The worker, the API, the CLI and the codec server (for the Web UI) all use it.
 *
 * An encrypted payload: metadata `encoding: binary/encrypted`, `encryption-key-id: <id>`,
 * `encryption-cipher: AES-256-GCM`; data = 12-byte IV ‖ ciphertext ‖ 16-byte tag of the original
 * payload (protobuf-encoded, metadata included). The key id (a fingerprint of the key, never the
 * key) lets keys rotate: the first key encrypts, every listed key decrypts.
 */

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Authenticated with every payload: a ciphertext from another system does not decrypt here. */
const AAD = Buffer.from('quartermaster/payload/v1');

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export interface CodecKey {
  id: string;
  key: Buffer;
}

/** A stable, non-secret id for a key: the first 16 hex digits of its SHA-256. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** `QM_CODEC_KEY`: one or more base64 keys of 32 bytes, comma-separated; the first encrypts. */
export const CodecKeys = z
  .string()
  .min(1, 'QM_CODEC_KEY must list at least one key')
  .transform((value, ctx): CodecKey[] => {
    const keys: CodecKey[] = [];
    value.split(',').forEach((part, i) => {
      const b64 = part.trim();
      const key = Buffer.from(b64, 'base64');
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || key.length !== 32) {
        ctx.addIssue({
          code: 'custom',
          message: `key ${i + 1} must be 32 bytes in base64 (openssl rand -base64 32)`,
        });
        return;
      }
      keys.push({ id: keyId(key), key });
    });
    return keys;
  });

export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly current: CodecKey;

  constructor(keys: CodecKey[]) {
    if (!keys.length) throw new Error('AesGcmCodec needs at least one key');
    this.current = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
  }

  /** The id of the key new payloads are encrypted with. */
  get keyId(): string {
    return this.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
      cipher.setAAD(AAD);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: {
          encoding: utf8(ENCRYPTED_ENCODING),
          [KEY_ID_METADATA]: utf8(this.current.id),
          [CIPHER_METADATA]: utf8(CIPHER),
        },
        data,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before encryption was turned on (or by a client without it) pass as they are.
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]);
      const key = id ? this.byId.get(id) : undefined;
      if (!key)
        throw new Error(
          `payload encrypted with key ${id ?? '(no key id)'}, which is not in QM_CODEC_KEY (keys: ${[
            ...this.byId.keys(),
          ].join(', ')})`,
        );
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error('encrypted payload is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(AAD);
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(), // throws if the payload was tampered with
      ]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * The codec from `QM_CODEC_KEY`, or undefined when it is not set. A bad value throws an error that
 * names the variable (and never shows the key).
 */
export function codecFromEnv(env: { QM_CODEC_KEY?: string }): AesGcmCodec | undefined {
  const raw = env.QM_CODEC_KEY;
  if (raw === undefined || raw === '') return undefined;
  const parsed = CodecKeys.safeParse(raw);
  if (!parsed.success) throw new Error(`bad configuration: QM_CODEC_KEY: ${describeIssues(parsed.error)}`);
  return new AesGcmCodec(parsed.data);
}

/** The failure converter that puts failure messages into (encrypted) payloads: client/failureConverter.ts. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failureConverter');

/** The payload converter that notes values which arrived unencrypted: client/payloadConverter.ts. */
export const PAYLOAD_CONVERTER_PATH = require.resolve('./payloadConverter');

/**
 * The worker's codec: `codec`, which also marks every payload it decodes that was not encrypted
 * (UNENCRYPTED_METADATA), so that a workflow whose input arrived in plain text is refused (see
 * client/payloadConverter.ts). Encoding is unchanged.
 */
export function refusePlainInput(codec: PayloadCodec): PayloadCodec {
  return {
    encode: (payloads) => codec.encode(payloads),
    async decode(payloads) {
      const wasPlain = payloads.map((p) => text(p.metadata?.encoding) !== ENCRYPTED_ENCODING);
      const decoded = await codec.decode(payloads);
      return decoded.map((p, i) =>
        wasPlain[i] ? { ...p, metadata: { ...p.metadata, [UNENCRYPTED_METADATA]: utf8('1') } } : p,
      );
    },
  };
}

/**
 * The data converter option for a Client or a Worker: when a codec is given, encrypted payloads,
 * failure messages and stack traces included. A worker (`worker: true`) refuses workflows whose
 * input arrived unencrypted.
 */
export function dataConverterFor(codec: PayloadCodec | undefined, opts: { worker?: boolean } = {}) {
  return codec
    ? {
        payloadCodecs: [opts.worker ? refusePlainInput(codec) : codec],
        failureConverterPath: FAILURE_CONVERTER_PATH,
        payloadConverterPath: PAYLOAD_CONVERTER_PATH,
      }
    : undefined;
}
