import {
  ApplicationFailure,
  DefaultFailureConverter,
  type PayloadConverter,
  type ProtoFailure,
  type SerializationContext,
} from '@temporalio/common';
import { UNENCRYPTED_INPUT } from './payloadConverter';

/**
 * Failure messages and stack traces moved into the failure's encoded attributes, a payload, so the
 * payload codec (client/codec.ts) encrypts them like any other payload: an error can carry a
 * host's stderr, a path or a customer's name, and Temporal stores it in plain text otherwise. Every
 * reader with the codec (the API, `qm`, the Web UI through the codec server) shows the message.
 *
 * What stays in clear is the failure's `message` field, which the Temporal CLI prints as it is
 * (`temporal workflow result|describe`: the codec server only ever sees payloads, never this
 * field). So instead of the SDK's bare "Encoded failure" it names the kind of failure (its type,
 * or the activity or child workflow that failed: never data) and where to read the message. A
 * refusal of unencrypted input (client/payloadConverter.ts) keeps its fixed message in clear: its
 * reader is whoever started the workflow without the codec.
 *
 * Loaded by path (FAILURE_CONVERTER_PATH in client/codec.ts): by clients and workers, and bundled
 * into the workflow sandbox (deploy/build.ts, the tests' bundle), where failures raised by workflow
 * code are converted. It imports nothing but @temporalio/common (and its sibling payloadConverter,
 * which does the same), so the sandbox can hold it.
 */

/** How to read an encrypted failure message from the shell (docs/platform.md). */
export const READ_ENCRYPTED_FAILURE =
  'the message is encrypted: read it with the codec (temporal workflow show --detailed or -o json ' +
  'with --codec-endpoint), qm, the API or the Web UI';

/** What failed, from the failure's plain fields (types and names, never a message). */
function kindOf(f: ProtoFailure): string | undefined {
  if (f.applicationFailureInfo?.type) return f.applicationFailureInfo.type;
  if (f.activityFailureInfo?.activityType?.name) return `activity ${f.activityFailureInfo.activityType.name}`;
  if (f.childWorkflowExecutionFailureInfo?.workflowType?.name)
    return `child workflow ${f.childWorkflowExecutionFailureInfo.workflowType.name}`;
  if (f.timeoutFailureInfo) return 'timeout';
  if (f.canceledFailureInfo) return 'cancelled';
  if (f.terminatedFailureInfo) return 'terminated';
  return undefined;
}

class PlatformFailureConverter extends DefaultFailureConverter {
  constructor() {
    super({ encodeCommonAttributes: true });
  }

  override errorToFailure(
    err: unknown,
    payloadConverter: PayloadConverter,
    context?: SerializationContext,
  ): ProtoFailure {
    if (err instanceof ApplicationFailure && err.type === UNENCRYPTED_INPUT && !err.failure)
      return { ...this.errorToFailureInner(err, payloadConverter, context), stackTrace: '' };
    const failure = super.errorToFailure(err, payloadConverter, context);
    if (failure.encodedAttributes) {
      const kind = kindOf(failure);
      failure.message = `Encoded failure${kind ? ` (${kind})` : ''}: ${READ_ENCRYPTED_FAILURE}`;
    }
    return failure;
  }
}

export const failureConverter = new PlatformFailureConverter();
