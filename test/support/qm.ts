import { main } from '../../cli/qm';

/**
 * Run `qm` in this process, as ops would from a shell pointed at the test's Temporal and task queue
 * (no codec key: the test workers write plain payloads). Its exit status and every line it printed.
 */
export async function runQm(argv: string[], taskQueue: string): Promise<{ code: number; lines: string[] }> {
  const vars = { TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS!, QM_TASK_QUEUE: taskQueue };
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  const lines: string[] = [];
  try {
    const code = await main(argv, {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
      readStdin: () => '',
    });
    return { code, lines };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}
