import { randomInt } from 'node:crypto';
import { SESSION_PRELUDE } from '../db/commands';
import { remoteScript } from '../ssh/remoteScript';

/**
 * What the site activities run on the hosts, built and never run here (Kamal-style): argument
 * vectors whose scripts (the longer ones in the .sh files beside this module) are constants
 * taking every variable part as a positional argument, and the SQL they send. Secrets only ever
 * travel on stdin and stdout, never in an argument.
 */

// ------------------------------------------------------------------ the DB password

/** Per-site secrets on the DB host: only root can list the directory, only root can read the file. */
export const SECRETS_ROOT = '/srv/qm/secrets';

export function secretPaths(siteId: string, root = SECRETS_ROOT) {
  const dir = `${root}/${siteId}`;
  return { root, dir, password: `${dir}/db-password` };
}

const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const PASSWORD_LENGTH = 32;

/**
 * A fresh DB password: 32 characters drawn uniformly (crypto.randomInt) from letters and digits,
 * about 190 bits. Nothing in it needs quoting in an env value, an option file or a URL.
 */
export function generatePassword(length = PASSWORD_LENGTH): string {
  let out = '';
  for (let i = 0; i < length; i++) out += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
  return out;
}

/** What a stored password must look like to be used (a hand-placed one may differ from ours). */
export const STORED_PASSWORD = /^[\x21-\x7e]{16,128}$/;

/**
 * Keep the password on stdin unless the file already holds one, then print the file
 * (ensure-secret.sh): created atomically and only if absent, so two runs at once agree on one
 * password; root-only directories.
 */
export const ENSURE_SECRET_SCRIPT = remoteScript(__dirname, 'ensure-secret.sh');

/** The password to keep (on stdin) if there is none yet; prints the one kept. */
export function ensureSecretArgv(siteId: string, root = SECRETS_ROOT): string[] {
  const p = secretPaths(siteId, root);
  return ['bash', '-c', ENSURE_SECRET_SCRIPT, 'qm-ensure-secret', p.root, p.dir, p.password];
}

/** Exit status of the read script when there is no such file. */
export const EXIT_ABSENT = 3;
const READ_SCRIPT = 'if [ -e "$1" ]; then exec cat -- "$1"; else exit 3; fi';

export function readSecretArgv(siteId: string, root = SECRETS_ROOT): string[] {
  return ['sh', '-c', READ_SCRIPT, 'qm-read-secret', secretPaths(siteId, root).password];
}

const REMOVE_SCRIPT = 'if [ -e "$1" ]; then rm -rf -- "$1"; echo removed; else echo absent; fi';

/** Remove the site's secrets directory; prints `removed` or `absent`. */
export function removeSecretArgv(siteId: string, root = SECRETS_ROOT): string[] {
  return ['sh', '-c', REMOVE_SCRIPT, 'qm-remove-secret', secretPaths(siteId, root).dir];
}

// ------------------------------------------------------------------ placement look-ups

/** The site databases on a DB host (one name a row). `\_` is a literal underscore in LIKE. */
export const SITE_DATABASES_SQL = SESSION_PRELUDE + "SHOW DATABASES LIKE 'site\\_%';\n";

/** TCP sockets listening on the host, without a header. */
export function listeningArgv(): string[] {
  return ['ss', '-Htln'];
}

/** The ports of `ss -Htln` output (the local address is the fourth column: `0.0.0.0:22`, `[::]:80`). */
export function parseListeningPorts(stdout: string): number[] {
  const ports = new Set<number>();
  for (const line of stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const m = local ? /:(\d+)$/.exec(local) : null;
    if (m) ports.add(Number(m[1]));
  }
  return [...ports].sort((a, b) => a - b);
}

/** Exit 0 if `path` is a directory. */
export function isDirectoryArgv(path: string): string[] {
  return ['test', '-d', path];
}

// ------------------------------------------------------------------ the shared files, as seen

/** The file system the sites' shared files are mounted with on the app hosts. */
export const SHARED_FILES_FS = 'fuse.sshfs';

/** files-views.sh: whether mounts answer, and what containers see at their files mount (read-only). */
export const FILES_VIEWS_SCRIPT = remoteScript(__dirname, 'files-views.sh');

/** Ask about these mount points (host side) and these processes' views of a target path. */
export function filesViewsArgv(q: {
  mounts: string[];
  processes: { pid: number; target: string }[];
}): string[] {
  return [
    'sh',
    '-c',
    FILES_VIEWS_SCRIPT,
    'qm-files-views',
    ...q.mounts.flatMap((m) => ['M', m]),
    ...q.processes.flatMap((p) => ['P', String(p.pid), p.target]),
  ];
}

export interface FilesViews {
  /** Mount point → mounted with sshfs and answering. */
  mounts: Record<string, boolean>;
  /** `<pid> <target>` → the file system that process sees there (`-`: nothing, or no such process). */
  processes: Record<string, string>;
}

export const processKey = (pid: number, target: string) => `${pid} ${target}`;

/** files-views.sh's output. */
export function parseFilesViews(stdout: string): FilesViews {
  const out: FilesViews = { mounts: {}, processes: {} };
  for (const line of stdout.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts[0] === 'M' && parts.length >= 3)
      out.mounts[parts.slice(1, -1).join(' ')] = parts.at(-1) === 'yes';
    else if (parts[0] === 'P' && parts.length >= 4)
      out.processes[processKey(Number(parts[1]), parts.slice(2, -1).join(' '))] = parts.at(-1)!;
  }
  return out;
}
