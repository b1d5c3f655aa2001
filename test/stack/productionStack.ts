import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';

const ROOT = path.resolve(__dirname, '..', '..');

/** Whether a loopback port can be bound now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `count` consecutive free loopback ports (dev/stack.sh puts every service after the frontend's). */
async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // membership ports are a smallint in Temporal's schema: below 32768
    const base = 20000 + Math.floor(Math.random() * 12000);
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => portFree(base + i)));
    if (checks.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free loopback ports in 50 tries`);
}

export interface ProductionStack {
  address: string;
  namespace: string;
  dir: string;
  pgPort: number;
  /** `dev/stack.sh <args>` with this stack's settings (faults: server-stop, pg-restart, …). */
  run(...args: string[]): string;
  /** One SQL statement's rows (psql -At) in one of the stack's databases. */
  sql(db: 'temporal' | 'temporal_visibility', statement: string): string;
  down(): void;
}

/**
 * `dev/stack.sh up` on free ports in its own directory: what `npm run stack` starts. down() stops
 * everything it started (by PID) and is safe to call after a failed or partial up.
 */
export async function stackUp(opts: { split?: boolean } = {}): Promise<ProductionStack> {
  const port = await freeRange(16);
  const pgPort = await freeRange(1);
  const dir = `/tmp/qm-stack-test-${randomUUID().slice(0, 8)}`;
  const env = {
    ...process.env,
    QM_STACK_DIR: dir,
    QM_STACK_PORT: String(port),
    QM_STACK_PG_PORT: String(pgPort),
    ...(opts.split ? { QM_STACK_SPLIT: '1' } : {}),
  };
  // exactly the command docs/production.md gives (`npm run stack -- up`); npm's banner goes to stderr
  const run = (...args: string[]) =>
    execFileSync('npm', ['run', '--silent', 'stack', '--', ...args], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
  const stack: ProductionStack = {
    address: '',
    namespace: 'default',
    dir,
    pgPort,
    run,
    sql: (db, statement) =>
      execFileSync(
        'runuser',
        [
          '-u',
          'postgres',
          '--',
          'psql',
          '-At',
          '-h',
          `${dir}/pg`,
          '-p',
          String(pgPort),
          '-U',
          'temporal',
          '-d',
          db,
        ],
        { input: statement, encoding: 'utf8', env: { PATH: process.env.PATH, PSQLRC: '/dev/null' } },
      ),
    down: () => {
      run('down');
    },
  };
  try {
    const out = run('up');
    const vars = Object.fromEntries(
      out
        .split('\n')
        .filter((l) => l.startsWith('TEMPORAL_'))
        .map((l) => l.split('=', 2) as [string, string]),
    );
    stack.address = vars.TEMPORAL_ADDRESS!;
    stack.namespace = vars.TEMPORAL_NAMESPACE!;
  } catch (err) {
    stack.down();
    throw err;
  }
  return stack;
}
