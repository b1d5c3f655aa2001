import { parseArgs } from 'node:util';
import { loadEnv, TemporalEnv } from '../../api/config';
import { connectClient } from '../../api/temporalClient';
import { codecFromEnv } from '../../workers/codec';
import { ensureNightlyBackupSchedule } from './schedule';

/**
 * Make sure the nightly backups' Schedule exists as configured (create-if-absent,
 * update-if-different; a paused schedule stays paused):
 *
 *   npx tsx activities/backup/cli.ts [--hour 1] [--minute 0] [--window 240] [--per-db-host 2]
 *
 * With the worker's environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, QM_TASK_QUEUE, QM_CODEC_KEY
 * (the schedule's input is encrypted like every other payload). Prints what it did.
 */
async function main() {
  const { values } = parseArgs({
    options: {
      hour: { type: 'string', default: '1' },
      minute: { type: 'string', default: '0' },
      window: { type: 'string', default: '240' },
      'per-db-host': { type: 'string', default: '2' },
    },
  });
  const env = loadEnv(TemporalEnv);
  const { client, close } = await connectClient(env, codecFromEnv());
  try {
    const r = await ensureNightlyBackupSchedule(client, env.QM_TASK_QUEUE, {
      hourUtc: Number(values.hour),
      minuteUtc: Number(values.minute),
      windowMinutes: Number(values.window),
      perDbHost: Number(values['per-db-host']),
    });
    console.log(`schedule ${r.scheduleId}: ${r.action}`);
  } finally {
    await close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
