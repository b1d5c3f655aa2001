import { z } from 'zod';
import { hostName } from '../../schema/common';
import type { Fleet } from '../fleet';
import { activityIO } from '../context';
import { parseInput } from '../input';

export interface HostCheck {
  host: string;
  hostname: string;
  dockerVersion: string;
  mariadbVersion: string;
}

/**
 * Check that a host answers on each of the three parts the platform uses: a command over SSH, its
 * Docker engine through the SSH connection, and its MariaDB server. Read-only, so safe to repeat.
 */
export function makeCheckHost(fleet: Fleet) {
  return async function checkHost(host: string): Promise<HostCheck> {
    const io = activityIO();
    const hostname = (await fleet.pool.exec(host, ['hostname'], io)).stdout.trim();
    const version = await fleet.docker.engine(host).version();
    const db = await fleet.pool.exec(
      host,
      ['mariadb', '--batch', '--skip-column-names', '-e', 'SELECT VERSION()'],
      io,
    );
    return { host, hostname, dockerVersion: version.Version, mariadbVersion: db.stdout.trim() };
  };
}

const ReachHostInput = z.strictObject({
  host: hostName,
  timeoutMs: z.number().int().min(1000).max(60_000).default(10_000),
});

/**
 * Whether the host answers a command over SSH within `timeoutMs`: `{ reachable: false, error }`
 * rather than a failure, so that the caller (a repair) learns it at once instead of after a
 * retried step's backoff, and decides what to leave alone. Read-only, so safe to repeat.
 */
export function makeReachHost(fleet: Fleet) {
  return async function reachHost(
    input: z.input<typeof ReachHostInput>,
  ): Promise<{ host: string; reachable: boolean; error?: string }> {
    const { host, timeoutMs } = parseInput(ReachHostInput, input, 'reachHost');
    fleet.pool.host(host);
    try {
      await fleet.pool.exec(host, ['true'], { ...activityIO(), timeoutMs });
      return { host, reachable: true };
    } catch (err) {
      return { host, reachable: false, error: err instanceof Error ? err.message : String(err) };
    }
  };
}
