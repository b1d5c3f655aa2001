import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * The development fleet (the test bed) from TypeScript: a thin wrapper over fleet.sh (the one place
 * that knows how the fleet is built), for the jest setup, the benches and tests that break a host
 * on purpose.
 */
export const TESTBED_DIR = process.env.QM_TESTBED_DIR ?? '/tmp/qm-testbed';
export const INVENTORY = path.join(TESTBED_DIR, 'inventory.json');
export const CLIENT_KEY = path.join(TESTBED_DIR, 'keys', 'id_ed25519');
const SCRIPT = path.join(__dirname, 'fleet.sh');

function run(...args: string[]): string {
  return runFor(5 * 60_000, ...args);
}

function runFor(timeoutMs: number, ...args: string[]): string {
  return execFileSync('bash', [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { ...process.env, QM_TESTBED_DIR: TESTBED_DIR },
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: timeoutMs,
  });
}

/** host2 -> 2 */
function index(host: string): string {
  const m = /^host(\d+)$/.exec(host);
  if (!m) throw new Error(`not a test bed host: ${host}`);
  return m[1]!;
}

export type Daemon = 'sshd' | 'docker' | 'mariadb';

export const testbed = {
  up: () => run('up'),
  down: () => run('down'),
  isUp(): boolean {
    try {
      run('is-up');
      return true;
    } catch {
      return false;
    }
  },
  /** Take the host off the network (its switch port goes down); `heal` puts it back. */
  cut: (host: string) => run('cut', index(host)),
  heal: (host: string) => run('heal', index(host)),
  stop: (host: string, daemon: Daemon) => run('stop', index(host), daemon),
  start: (host: string, daemon: Daemon) => run('start', index(host), daemon),
  /** What a patch reboot looks like from outside: sshd and the Docker engine stop and start again. */
  reboot: (host: string) => run('reboot', index(host)),
  /** Give the host a new SSH host key (sshd restarts); the inventory keeps pinning the old one. */
  rekey: (host: string) => run('rekey', index(host)),
  /** Put back the host key the host had before `rekey` (sshd restarts); a no-op if it was not rekeyed. */
  restoreKey: (host: string) => run('restore-key', index(host)),
  /**
   * Another inventory of the bed's hosts with other roles (one entry per host, host1 first: its
   * roles, or [] to leave it out); hosts past the bed's own are made and started. Its path.
   */
  layout: (name: string, roles: string[][]) =>
    run('layout', name, ...roles.map((r) => (r.length ? r.join(',') : '-'))).trim(),
  /** Load the PHP site's image (profiles/test-php.yaml) into these hosts: built once per machine (minutes), then cached. */
  phpImage: (hosts: string[]) => runFor(20 * 60_000, 'php-image', ...hosts.map(index)),
  /** Run a command inside a host's namespaces, bypassing SSH (for checking outcomes). */
  exec: (host: string, argv: string[]) => run('exec', index(host), ...argv),
};
