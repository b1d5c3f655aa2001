import { z } from 'zod';

/**
 * Names that reach a remote host (site ids, container, database and user names) are restricted to
 * a DNS-safe slug: lowercase ASCII letters, digits and inner hyphens. That rules out shell
 * metacharacters, path traversal and unicode look-alikes at the edge, before anything starts.
 */
export const slug = (what: string, max = 40) =>
  z
    .string()
    .min(2, `${what} must be at least 2 characters`)
    .max(max, `${what} must be at most ${max} characters`)
    .regex(
      /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/,
      `${what} must be lowercase letters, digits and inner hyphens`,
    );

/** A host name in the inventory. */
export const hostName = slug('host name', 63);

/** An argument vector: each element reaches the remote program as exactly one argument. */
export const Argv = z
  .array(
    z
      .string()
      .max(4096)
      .refine((s) => !s.includes('\0'), 'an argument cannot contain a NUL byte'),
  )
  .min(1, 'a command needs at least its program')
  .max(256)
  .refine((a) => a.length === 0 || a[0] !== '', 'the program cannot be empty');

/** Format zod issues as one line per field: `hosts.1.address: Invalid IPv4 address`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(input)'}: ${i.message}`)
    .join('; ');
}

/** Parse or throw an Error whose message names every bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success)
    throw new InvalidInputError(`invalid ${what}: ${describeIssues(result.error)}`, result.error);
  return result.data;
}

export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
  constructor(
    message: string,
    readonly zodError?: z.ZodError,
  ) {
    super(message);
  }
}
