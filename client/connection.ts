import { Client, Connection } from '@temporalio/client';
import type { PayloadCodec } from '@temporalio/common';
import { dataConverterFor } from './codec';

/**
 * A Temporal client for the API or the CLI, with the payload codec when there is one. `env` is
 * their validated environment (config/: TemporalEnv).
 */
export async function connectClient(
  env: { TEMPORAL_ADDRESS: string; TEMPORAL_NAMESPACE: string },
  codec: PayloadCodec | undefined,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS, connectTimeout: 5000 });
  const client = new Client({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(codec),
  });
  return { client, close: () => connection.close() };
}
