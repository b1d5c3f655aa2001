import { AesGcmCodec } from '../client/codec';
import { connectClient } from '../client/connection';
import { ApiEnv, loadEnv } from '../config';
import { buildApi } from './server';

/**
 * `npm run api`: the billing API alone. Configuration from the environment (config/, ApiEnv):
 * QM_API_SECRETS, QM_CODEC_KEY (the worker's key), TEMPORAL_ADDRESS, QM_TASK_QUEUE,
 * QM_API_HOST/QM_API_PORT.
 */
async function main() {
  const env = loadEnv(ApiEnv);
  const { client, close } = await connectClient(env, new AesGcmCodec(env.QM_CODEC_KEY));
  const app = buildApi({
    client,
    taskQueue: env.QM_TASK_QUEUE,
    secrets: env.QM_API_SECRETS,
    gitHookSecrets: env.QM_GIT_HOOK_SECRETS,
    logger: true,
  });
  await app.listen({ host: env.QM_API_HOST, port: env.QM_API_PORT });
  const stop = async () => {
    await app.close(); // finishes in-flight requests; new ones get 503
    await close();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stop());
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
