import { randomBytes } from 'node:crypto';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, codecFromEnv, CodecKeys, keyId } from '../../client/codec';

const key = () => randomBytes(32);
const codecOf = (...keys: Buffer[]) => new AesGcmCodec(keys.map((k) => ({ id: keyId(k), key: k })));
const payload = (v: unknown) => defaultPayloadConverter.toPayload(v) as Payload;
const value = (p: Payload) => defaultPayloadConverter.fromPayload(p);
const meta = (p: Payload, k: string) => Buffer.from(p.metadata![k]!).toString();

describe('AesGcmCodec', () => {
  test('round trip; the ciphertext holds no plaintext; the key id is in the metadata', async () => {
    const k = key();
    const codec = codecOf(k);
    const secret = { domain: 'marker-7f3a.example', nested: [1, 'two'] };
    const [encoded] = await codec.encode([payload(secret)]);
    expect(meta(encoded!, 'encoding')).toBe('binary/encrypted');
    expect(meta(encoded!, 'encryption-key-id')).toBe(keyId(k));
    expect(Buffer.from(encoded!.data!).includes('marker-7f3a')).toBe(false);
    const [decoded] = await codec.decode([encoded!]);
    expect(value(decoded!)).toEqual(secret);
  });

  test('each encoding uses a fresh IV', async () => {
    const codec = codecOf(key());
    const [a, b] = await codec.encode([payload('same'), payload('same')]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  test('rotation: the first key encrypts, every listed key decrypts', async () => {
    const [oldKey, newKey] = [key(), key()];
    const [old] = await codecOf(oldKey).encode([payload('old data')]);
    const rotated = codecOf(newKey, oldKey);
    expect(value((await rotated.decode([old!]))[0]!)).toBe('old data');
    const [fresh] = await rotated.encode([payload('new data')]);
    expect(meta(fresh!, 'encryption-key-id')).toBe(keyId(newKey));
  });

  test('an unknown key id fails clearly, naming the id', async () => {
    const [enc] = await codecOf(key()).encode([payload('x')]);
    await expect(codecOf(key()).decode([enc!])).rejects.toThrow(/not in QM_CODEC_KEY/);
  });

  test('tampering is detected (GCM tag)', async () => {
    const codec = codecOf(key());
    const [enc] = await codec.encode([payload('pay me')]);
    const data = Buffer.from(enc!.data!);
    data[20]! ^= 1;
    await expect(codec.decode([{ ...enc!, data }])).rejects.toThrow();
  });

  test('plain payloads (written before encryption) pass through decode', async () => {
    const plain = payload({ a: 1 });
    expect(await codecOf(key()).decode([plain])).toEqual([plain]);
  });
});

describe('QM_CODEC_KEY', () => {
  test('one or more base64 32-byte keys; unset means no codec', () => {
    const [a, b] = [key(), key()];
    expect(codecFromEnv({ QM_CODEC_KEY: `${a.toString('base64')},${b.toString('base64')}` })!.keyId).toBe(
      keyId(a),
    );
    expect(codecFromEnv({})).toBeUndefined();
  });

  test.each(['short', randomBytes(16).toString('base64'), `${key().toString('base64')},not base64!`])(
    'refused without showing the value: %j',
    (v) => {
      expect(CodecKeys.safeParse(v).success).toBe(false);
      expect(() => codecFromEnv({ QM_CODEC_KEY: v })).toThrow(/QM_CODEC_KEY: .*32 bytes/);
      try {
        codecFromEnv({ QM_CODEC_KEY: v });
      } catch (err) {
        expect((err as Error).message).not.toContain(v);
      }
    },
  );
});
