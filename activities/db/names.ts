import { z } from 'zod';
import { hostName, InvalidInputError, parseOrThrow, slug } from '../../schema/common';
import { failure, FailureType } from '../errors';

/**
 * What may name a database, an account or a snapshot. Everything is checked here, at the edge,
 * before any command is built; the SQL builders quote identifiers anyway (defence in depth).
 */

/** Schemas MariaDB keeps for itself: never created, granted, dumped over or dropped by us. */
export const SYSTEM_DATABASES: readonly string[] = [
  'mysql',
  'information_schema',
  'performance_schema',
  'sys',
];

/** Accounts that belong to the server itself. */
export const SYSTEM_USERS: readonly string[] = ['root', 'mysql', 'public'];

/**
 * A database name: lowercase letters, digits, inner hyphens and underscores (Drupal's convention),
 * at most 64 characters (MariaDB's limit). Underscore is a wildcard in GRANT, so the builders escape
 * it there; hyphens need the backtick quoting every identifier gets.
 */
export const dbName = z
  .string()
  .min(2, 'database name must be at least 2 characters')
  .max(64, 'database name must be at most 64 characters')
  .regex(
    /^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$/,
    'database name must be lowercase letters, digits and inner hyphens or underscores',
  )
  .refine((n) => !SYSTEM_DATABASES.includes(n), 'database name is a system schema');

/** An account's user name: the same alphabet, at most 80 characters (MariaDB's limit). */
export const dbUser = z
  .string()
  .min(2, 'user name must be at least 2 characters')
  .max(80, 'user name must be at most 80 characters')
  .regex(
    /^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$/,
    'user name must be lowercase letters, digits and inner hyphens or underscores',
  )
  .refine((n) => !SYSTEM_USERS.includes(n), 'user name is reserved for the server');

/**
 * Where an account may connect from: '%', 'localhost', an IPv4 address or pattern ('10.0.%'), an
 * address with a netmask ('10.0.0.0/255.255.255.0'), an IPv6 address, or a host name.
 */
export const dbFromHost = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9.%_:/-]+$/, 'a connecting host is %, an address, an address/netmask or a host name');

/**
 * A password. Printable ASCII only (no line breaks: it also goes into client option files), 16 to
 * 128 characters. It never appears in an error message, so the messages here do not quote it.
 */
export const dbPassword = z
  .string()
  .min(16, 'password must be at least 16 characters')
  .max(128, 'password must be at most 128 characters')
  .regex(/^[\x20-\x7e]+$/, 'password must be printable ASCII');

/** A snapshot's name, part of a file name on the DB host. */
export const snapshotName = slug('snapshot name', 100);

export { hostName };

/**
 * Parse or raise InvalidInput (never retried). The messages name the field and the rule, never the
 * value, so a password that fails its rules is not echoed into the workflow's history.
 */
export function validate<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  try {
    return parseOrThrow(schema, input, what);
  } catch (err) {
    if (err instanceof InvalidInputError) throw failure(FailureType.InvalidInput, err.message);
    throw err;
  }
}
