import { randomBytes } from 'node:crypto';
import type { Payload } from '@temporalio/common';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, codecFromEnv, CodecKeys, keyId, refusePlainInput } from '../../client/codec';
import { failureConverter } from '../../client/failureConverter';
import {
  arrivedUnencrypted,
  payloadConverter,
  UNENCRYPTED_INPUT,
  UNENCRYPTED_INPUT_MESSAGE,
  UNENCRYPTED_METADATA,
} from '../../client/payloadConverter';

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

describe("the worker's codec: input that arrived unencrypted is noted", () => {
  test('plain payloads are marked, encrypted ones are not; the converter remembers the values', async () => {
    const codec = codecOf(key());
    const [encrypted] = await codec.encode([payload({ from: 'the codec' })]);
    const [plain, decrypted] = await refusePlainInput(codec).decode([
      payload({ from: 'a bare CLI' }),
      encrypted!,
    ]);
    expect(meta(plain!, UNENCRYPTED_METADATA)).toBe('1');
    expect(decrypted!.metadata![UNENCRYPTED_METADATA]).toBeUndefined();
    const [a, b] = [payloadConverter.fromPayload(plain!), payloadConverter.fromPayload(decrypted!)];
    expect([a, b]).toEqual([{ from: 'a bare CLI' }, { from: 'the codec' }]);
    expect([arrivedUnencrypted(a), arrivedUnencrypted(b)]).toEqual([true, false]);
    // the API's, qm's and the codec server's codec mark nothing
    expect((await codec.decode([payload({ x: 1 })]))[0]!.metadata![UNENCRYPTED_METADATA]).toBeUndefined();
  });
});

describe('the failure converter', () => {
  test('the message and stack go into the encoded attributes; the plain message says what failed and where to read it', () => {
    const err = ApplicationFailure.create({
      type: 'InvalidInput',
      message: 'acme.example: no such site',
      nonRetryable: true,
    });
    const f = failureConverter.errorToFailure(err, defaultPayloadConverter);
    expect(f.message).toBe(
      'Encoded failure (InvalidInput): the message is encrypted: read it with the codec (temporal workflow show --detailed or -o json with --codec-endpoint), qm, the API or the Web UI',
    );
    expect(`${f.message} ${f.stackTrace}`).not.toContain('acme.example');
    expect(f.encodedAttributes).toBeDefined();
    expect(failureConverter.failureToError(f, defaultPayloadConverter).message).toBe(
      'acme.example: no such site',
    );
  });

  test('the refusal of unencrypted input stays in clear, without a stack', () => {
    const err = ApplicationFailure.create({
      type: UNENCRYPTED_INPUT,
      message: UNENCRYPTED_INPUT_MESSAGE,
      nonRetryable: true,
    });
    const f = failureConverter.errorToFailure(err, defaultPayloadConverter);
    expect([f.message, f.stackTrace, f.encodedAttributes]).toEqual([
      UNENCRYPTED_INPUT_MESSAGE,
      '',
      undefined,
    ]);
  });
});
