import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Host } from '../../schema/inventory';
import { failure, FailureType } from '../errors';

/**
 * How a host is rebooted. In production: `systemctl reboot`, scheduled by systemd a moment ahead
 * (commands.ts, scheduleRebootArgv). On the test bed a "host" is a set of namespaces, not a
 * machine: what a reboot looks like from outside is `fleet.sh reboot N` (sshd and dockerd stop
 * and start again), run on the worker's machine.
 *
 * A host is a test-bed host when its inventory entry carries the label `testbed` (dev/fleet.sh puts
 * `"testbed": "<prefix>"` on every host it makes). Because that runs a local script as root, it is
 * only done when this worker was started for that very bed: QM_TESTBED_DIR is set, its prefix
 * (QM_TESTBED_PREFIX, default qm) is the label's value, and the bed's own inventory.json lists the
 * host under the same name and address. Anything else is refused (InvalidInput), never guessed.
 * The script is the bed's own `fleet.sh` (a link the bed writes to the script that made it), so
 * that this code, built or not, needs no path into the development tools (dev/).
 */

const execFileAsync = promisify(execFile);

export function isTestbedHost(host: Host): boolean {
  return host.labels.testbed !== undefined;
}

/** The bed index N of a test-bed host, after checking that this worker's bed is the host's. */
export function testbedIndex(
  host: Host,
  env: NodeJS.ProcessEnv = process.env,
): { dir: string; index: string } {
  const refuse = (why: string) =>
    failure(FailureType.InvalidInput, `${host.name} is labelled as a test-bed host, but ${why}`, {
      host: host.name,
    });
  const dir = env.QM_TESTBED_DIR;
  if (!dir) throw refuse('QM_TESTBED_DIR is not set for this worker');
  const prefix = env.QM_TESTBED_PREFIX ?? 'qm';
  if (host.labels.testbed !== prefix)
    throw refuse(`its bed is "${host.labels.testbed}" and this worker's is "${prefix}"`);
  let listed: { name: string; address: string }[] = [];
  try {
    listed = (JSON.parse(fs.readFileSync(path.join(dir, 'inventory.json'), 'utf8')) as { hosts: [] }).hosts;
  } catch {
    throw refuse(`${dir}/inventory.json cannot be read`);
  }
  if (!listed.some((h) => h.name === host.name && h.address === host.address))
    throw refuse(`the bed in ${dir} has no ${host.name} at ${host.address}`);
  const m = /^host(\d+)$/.exec(host.name);
  if (!m) throw refuse('its name is not hostN');
  return { dir, index: m[1]! };
}

/** `fleet.sh reboot N`, the bed's own script: returns once sshd and dockerd are up again. */
export async function rebootTestbedHost(host: Host, signal?: AbortSignal): Promise<void> {
  const { dir, index } = testbedIndex(host);
  try {
    await execFileAsync('bash', [path.join(dir, 'fleet.sh'), 'reboot', index], {
      env: { ...process.env, QM_TESTBED_DIR: dir },
      timeout: 120_000,
      signal,
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw failure(
      FailureType.CommandFailed,
      `test-bed reboot of ${host.name} failed: ${(e.stderr ?? e.message).trim().split('\n').pop()}`,
      { host: host.name },
    );
  }
}
