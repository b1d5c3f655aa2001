import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';
import {
  ensureSecretArgv,
  EXIT_ABSENT,
  generatePassword,
  readSecretArgv,
  removeSecretArgv,
  secretPaths,
  STORED_PASSWORD,
} from './commands';

/**
 * The site's DB password, kept on its DB host only (/srv/qm/secrets/<site>/db-password, root-only).
 * It is made and read inside activities: it travels on the SSH channel's stdin and stdout, never on
 * a command line, and none of these functions puts it in a failure or a return value that reaches
 * a workflow (callers must not either).
 */

const QUICK_MS = 60_000;

function stored(stdout: string, host: string, siteId: string): string {
  const password = stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout;
  if (!STORED_PASSWORD.test(password))
    throw failure(
      FailureType.Conflict,
      `${host}: ${secretPaths(siteId).password} does not hold a usable password ` +
        '(one line of 16-128 printable characters): fix or remove it by hand',
      { host, siteId },
    );
  return password;
}

/**
 * The site's password: the one on the DB host, or a new one kept there if there is none. Safe
 * twice and at once: a password is only ever created if absent (see ENSURE_SECRET_SCRIPT), and
 * every run returns the one that is kept.
 */
export async function ensureSitePassword(pool: SshPool, host: string, siteId: string): Promise<string> {
  const r = await pool.exec(host, ensureSecretArgv(siteId), {
    ...activityIO(),
    stdin: generatePassword(),
    timeoutMs: QUICK_MS,
  });
  return stored(r.stdout, host, siteId);
}

/** The site's password; none kept yet is a Conflict (ensureSiteDatabase has not run). Read-only. */
export async function readSitePassword(pool: SshPool, host: string, siteId: string): Promise<string> {
  const r = await pool.exec(host, readSecretArgv(siteId), {
    ...activityIO(),
    timeoutMs: QUICK_MS,
    check: false,
  });
  if (r.code === EXIT_ABSENT)
    throw failure(
      FailureType.Conflict,
      `${host} keeps no DB password for site ${siteId}: ensureSiteDatabase must run first`,
      { host, siteId },
    );
  if (r.code !== 0)
    throw failure(
      FailureType.CommandFailed,
      `${host}: cannot read the DB password of ${siteId} (exit ${r.code})`,
      {
        host,
        siteId,
      },
    );
  return stored(r.stdout, host, siteId);
}

/** Remove the site's secrets directory; one already gone is `absent`. */
export async function removeSiteSecrets(
  pool: SshPool,
  host: string,
  siteId: string,
): Promise<'removed' | 'absent'> {
  const r = await pool.exec(host, removeSecretArgv(siteId), { ...activityIO(), timeoutMs: QUICK_MS });
  return r.stdout.trim() === 'removed' ? 'removed' : 'absent';
}
