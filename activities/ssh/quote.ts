/**
 * Quoting for the remote shell. sshd hands a command string to the user's login shell, so an
 * argument vector must become one string that every POSIX shell splits back into exactly those
 * arguments. Each argument is wrapped in single quotes (inside which nothing is special) and each
 * single quote in it becomes '\'' . Nothing untrusted is ever pasted into a shell line unquoted.
 */
export function quoteArg(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('an argument cannot contain a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Words a shell reads specially in command position even when they hold only plain characters: its
 * reserved words (POSIX and bash's), and `NAME=value`, which is a variable assignment there.
 */
const RESERVED = new Set(
  'case do done elif else esac fi for function if in select then time until while coproc'.split(' '),
);

/** An argument vector as one shell line: the first element is always run as a program. */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('an empty command');
  return argv
    .map((arg, i) => {
      const quoted = quoteArg(arg);
      return i === 0 && quoted === arg && (RESERVED.has(arg) || arg.includes('=')) ? `'${arg}'` : quoted;
    })
    .join(' ');
}

/** The first line the remote wrapper writes on stderr: the process group to signal on cancel. */
export const PGID_MARKER = 'qm-pgid ';

/**
 * The whole command line sent over SSH. sshd starts each non-pty session in a session (and process
 * group) of its own; the wrapper reports that group's id on its first stderr line and then execs
 * the command, so that a cancel or a timeout can stop the command and all its children with
 * `kill -- -PGID`. (OpenSSH ignores the SSH "signal" request on many setups, root logins among them.)
 */
export function remoteCommandLine(argv: readonly string[]): string {
  return `exec sh -c ${quoteArg(`echo "${PGID_MARKER}$$" >&2; exec "$@"`)} qm ${quoteArgv(argv)}`;
}
