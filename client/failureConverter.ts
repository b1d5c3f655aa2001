import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces moved into the failure's encoded attributes, a payload, so the
 * payload codec (client/codec.ts) encrypts them like any other payload: an error can carry a
 * host's stderr, a path or a customer's name, and Temporal stores it in plain text otherwise. What
 * Temporal itself shows without the key is "Encoded failure"; every reader with the codec (the
 * API, `qm`, the Web UI through the codec server) decodes the message.
 *
 * Loaded by path (FAILURE_CONVERTER_PATH in client/codec.ts): by clients and workers, and bundled
 * into the workflow sandbox (deploy/build.ts, the tests' bundle), where failures raised by workflow
 * code are converted. It imports nothing but @temporalio/common, so the sandbox can hold it.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
