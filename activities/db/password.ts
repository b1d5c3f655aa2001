import { createHash } from 'node:crypto';

/**
 * The mysql_native_password hash of a password, as the server stores it: '*' and the upper-case
 * hex of SHA1(SHA1(password)). Accounts are created with `IDENTIFIED BY PASSWORD '<hash>'`, so the
 * plain password never leaves this process: not on the host's stdin, not in the server's
 * processlist, general log or binary log. The hash still cracks offline, so it is treated as a
 * secret too (stdin only, redacted).
 */
export function nativePasswordHash(password: string): string {
  const stage1 = createHash('sha1').update(password, 'utf8').digest();
  return '*' + createHash('sha1').update(stage1).digest('hex').toUpperCase();
}
