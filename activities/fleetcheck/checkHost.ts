import type { Fleet } from '../fleet';
import { activityIO } from '../context';

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
