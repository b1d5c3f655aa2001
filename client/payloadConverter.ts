import { defaultPayloadConverter, type Payload, type PayloadConverter } from '@temporalio/common';

/**
 * The payload converter of the worker, the API and `qm`: the SDK's default one, which also notes
 * the values whose payload reached the worker unencrypted, so that a workflow started without the
 * codec (`temporal workflow start` without `--codec-endpoint`, a client without QM_CODEC_KEY) is
 * refused instead of running on input Temporal now stores in plain text.
 *
 * How: the worker's codec (refusePlainInput in client/codec.ts) marks each payload it decodes that
 * was not encrypted with the metadata UNENCRYPTED_METADATA; this converter, which runs inside the
 * workflow sandbox (bundled by path, like the failure converter), remembers the values it made from
 * marked payloads; the sandbox interceptor (workers/workflowInterceptors.ts) fails a workflow whose
 * input is one of them. Only the worker's codec marks: the API's and `qm`'s clients, the codec
 * server and a worker without QM_CODEC_KEY never do, so this changes nothing for them.
 *
 * It imports nothing but @temporalio/common, so the sandbox can hold it.
 */

export const UNENCRYPTED_METADATA = 'qm-arrived-unencrypted';

/** Values made from marked payloads (objects only: every workflow input is one). */
const unencrypted = new WeakSet<object>();

export const payloadConverter: PayloadConverter = {
  toPayload: (value) => defaultPayloadConverter.toPayload(value),
  fromPayload<T>(payload: Payload): T {
    const value = defaultPayloadConverter.fromPayload<T>(payload);
    if (payload.metadata?.[UNENCRYPTED_METADATA] && typeof value === 'object' && value !== null)
      unencrypted.add(value);
    return value;
  },
};

/** Whether the value was made from a payload that reached the worker unencrypted. */
export function arrivedUnencrypted(value: unknown): boolean {
  return typeof value === 'object' && value !== null && unencrypted.has(value);
}

/** The failure type of the refusal; its message is kept in clear (client/failureConverter.ts). */
export const UNENCRYPTED_INPUT = 'UnencryptedInput';

export const UNENCRYPTED_INPUT_MESSAGE =
  "refused: this workflow's input reached the worker unencrypted (started without the codec), so " +
  'Temporal holds it in plain text in this history; start it again through the codec ' +
  '(temporal … --codec-endpoint <codec server>/codec --codec-auth "Bearer <token>", the Web UI, ' +
  'the API or qm), and delete this run if its input was sensitive (temporal workflow delete)';
