import { ApplicationFailure } from '@temporalio/common';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { ExecResult, SshPool } from '../ssh/pool';
import { mariadbArgv, parseBatch, quoteString } from './commands';

/**
 * Running SQL on a DB host: the `mariadb` client as root over the server's unix socket, the SQL on
 * its stdin (never on the command line), rows parsed from its batch output. Any secret the SQL
 * carries is scrubbed from whatever a failure reports.
 */
export interface SqlOptions {
  /** Default database of the session. */
  db?: string;
  /** Values that must never appear in a failure's message or details (passwords, hashes). */
  secrets?: readonly string[];
  /** Stop the client after this long (default 60 s). */
  timeoutMs?: number;
}

export const REDACTED = '[redacted]';

/** Every form a secret could take in an echo of our SQL: as given, and as quoted in a literal. */
function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (!s) continue;
    forms.add(s);
    forms.add(quoteString(s).slice(1, -1));
  }
  // longest first, so that a form containing another is replaced whole
  return [...forms].sort((a, b) => b.length - a.length);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const form of secretForms(secrets)) out = out.split(form).join(REDACTED);
  return out;
}

function redactValue(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return redact(value, secrets);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, secrets)]));
  return value;
}

/**
 * The same failure with every secret scrubbed from its message and details. A captured stderr is
 * dropped altogether: it was cut to its tail below us, and a cut through a secret leaves a piece
 * that no longer matches it.
 */
export function redactFailure(err: unknown, secrets: readonly string[]): unknown {
  if (!secrets.length || !(err instanceof ApplicationFailure)) return err;
  const details = err.details?.[0];
  let scrubbed: Record<string, unknown> | undefined;
  if (details && typeof details === 'object') {
    const { stderr: _stderr, ...rest } = details as Record<string, unknown>;
    scrubbed = redactValue(rest, secrets) as Record<string, unknown>;
  }
  return failure(
    (err.type ?? FailureType.CommandFailed) as FailureType,
    redact(err.message, secrets),
    scrubbed,
  );
}

/** The last `max` characters of a text, from a line start (so no line, or secret, is cut in two). */
export function tailLines(text: string, max: number): string {
  if (text.length <= max) return text;
  const tail = text.slice(-max);
  const nl = tail.indexOf('\n');
  return nl < 0 ? '' : tail.slice(nl + 1);
}

/** The client's last `ERROR nnnn (SQLSTATE)` line, if any. */
function serverError(stderr: string): { code: number; line: string } | undefined {
  const lines = stderr.trim().split('\n').reverse();
  for (const line of lines) {
    const m = /^ERROR (\d+) \(/.exec(line);
    if (m) return { code: Number(m[1]), line: line.slice(0, 300) };
  }
  return undefined;
}

/** Errors a retry cannot fix: the SQL itself is wrong. */
const SYNTAX_ERRORS = new Set([1064, 1149]);
/**
 * Errors of a server configured against the request: 1290, e.g. --strict-password-validation with
 * a password policy plugin, which refuses accounts created from a hash.
 */
const CONFIG_ERRORS = new Set([1290]);

export function sqlFailure(host: string, r: ExecResult, secrets: readonly string[]) {
  const err = serverError(r.stderr);
  const summary = redact(err?.line ?? r.stderr.trim().split('\n').pop() ?? '', secrets);
  const type =
    err && SYNTAX_ERRORS.has(err.code)
      ? FailureType.InvalidInput
      : err && CONFIG_ERRORS.has(err.code)
        ? FailureType.Conflict
        : FailureType.CommandFailed;
  return failure(type, `${host}: mariadb exited ${r.code ?? 'by signal ' + r.signal}: ${summary}`, {
    host,
    argv0: 'mariadb',
    code: r.code,
    mariadbError: err?.code,
    // the client echoes a failing statement: redact the whole text before cutting it
    stderr: tailLines(redact(r.stderr, secrets), 2000),
  });
}

/** Run a script; its result rows (of every statement that returns some, in order). */
export async function runSqlScript(
  pool: SshPool,
  host: string,
  sql: string,
  o: SqlOptions = {},
): Promise<string[][]> {
  const secrets = o.secrets ?? [];
  let r: ExecResult;
  try {
    r = await pool.exec(host, mariadbArgv(o.db), {
      stdin: sql,
      check: false,
      timeoutMs: o.timeoutMs ?? 60_000,
      ...activityIO(),
    });
  } catch (err) {
    throw redactFailure(err, secrets);
  }
  if (r.code !== 0) throw sqlFailure(host, r, secrets);
  return parseBatch(r.stdout);
}
