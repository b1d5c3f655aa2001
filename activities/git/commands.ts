import fs from 'node:fs';
import path from 'node:path';
import { remoteScript } from '../ssh/remoteScript';
import { HOOK_DIR, repoPath } from './refs';

/**
 * Everything the Git activities run on the Git host, built and never run here: argument vectors
 * whose scripts (the longer ones in the files beside this module) are constants taking each
 * variable part as a positional argument, so no repo, ref or path ever becomes shell syntax.
 * Contents (the hook, its config, its secret) go on stdin.
 */

/** The post-receive hook's text (activities/git/post-receive.pl). */
export const HOOK_SCRIPT = fs.readFileSync(path.join(__dirname, 'post-receive.pl'), 'utf8');

export const hookPaths = {
  script: `${HOOK_DIR}/post-receive`,
  config: `${HOOK_DIR}/hook.json`,
  secret: `${HOOK_DIR}/hook.secret`,
  spool: `${HOOK_DIR}/spool`,
  failed: `${HOOK_DIR}/failed`,
};

const ENSURE_REPO_SCRIPT = remoteScript(__dirname, 'ensure-repo.sh');

/**
 * A bare repository at /srv/git/<repo> if there is none; prints `created` or `existing`. Made aside
 * and renamed into place, with `qm.createdBy` (the site whose provisioning made it) in its config:
 * what removeRepoArgv checks before it removes anything.
 */
export function ensureRepoArgv(repo: string, createdBy = ''): string[] {
  return ['sh', '-c', ENSURE_REPO_SCRIPT, 'qm-ensure-repo', repoPath(repo), createdBy];
}

const REMOVE_REPO_SCRIPT = `set -eu
repo=$1 owner=$2
[ -e "$repo" ] || { echo absent; exit 0; }
[ "$(git -C "$repo" config --get qm.createdBy || true)" = "$owner" ] || { echo not-created-by-site; exit 0; }
[ -z "$(git -C "$repo" for-each-ref --count=1)" ] || { echo has-commits; exit 0; }
rm -rf -- "$repo"
echo removed`;

/**
 * Remove the repository only if `createdBy` made it and nothing was ever pushed to it (no ref):
 * the undo of a failed provision. Prints `removed`, `absent`, `not-created-by-site` or
 * `has-commits` (the last two remove nothing: a repository another site made, or one holding a
 * customer's commits, is never deleted by an undo).
 */
export function removeRepoArgv(repo: string, createdBy: string): string[] {
  return ['sh', '-c', REMOVE_REPO_SCRIPT, 'qm-remove-repo', repoPath(repo), createdBy];
}

const WRITE_FILE_SCRIPT = `set -eu
file=$1 mode=$2
# the folders on the way are read by others (nginx serves pages from /srv/qm/proxy): 0755 whoever makes them first
(umask 022; mkdir -p -- "$(dirname -- "$file")")
umask 077
tmp="$file.qm-tmp.$$"
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod "$mode" -- "$tmp"
if [ -f "$file" ] && cmp -s -- "$tmp" "$file"; then chmod "$mode" -- "$file"; echo unchanged; exit 0; fi
mv -f -- "$tmp" "$file"
echo written`;

/**
 * Write stdin to `file` with `mode` if its content differs (temporary file, then rename: a reader
 * never sees half a file); prints `written` or `unchanged`. Secrets are written this way: on stdin.
 */
export function writeFileArgv(file: string, mode: '0600' | '0644' | '0755'): string[] {
  return ['sh', '-c', WRITE_FILE_SCRIPT, 'qm-write-file', file, mode];
}

const LINK_HOOK_SCRIPT = `set -eu
hook=$1/hooks/post-receive target=$2
mkdir -p -- "$1/hooks" "$3" "$4"
chmod 0700 -- "$3" "$4"
if [ -L "$hook" ] && [ "$(readlink -- "$hook")" = "$target" ]; then echo unchanged; exit 0; fi
ln -sfn -- "$target" "$hook.qm-tmp"
mv -Tf -- "$hook.qm-tmp" "$hook"
echo linked`;

/** The repository's hooks/post-receive as a link to the shared hook script; the spool directories. */
export function linkHookArgv(repo: string): string[] {
  return [
    'sh',
    '-c',
    LINK_HOOK_SCRIPT,
    'qm-link-hook',
    repoPath(repo),
    hookPaths.script,
    hookPaths.spool,
    hookPaths.failed,
  ];
}

/** The commit a ref names, or exit 1 (`git rev-parse --verify`; `--end-of-options` keeps it a ref). */
export function resolveRefArgv(repo: string, ref: string): string[] {
  return [
    'git',
    '-C',
    repoPath(repo),
    'rev-parse',
    '--verify',
    '--quiet',
    '--end-of-options',
    `${ref}^{commit}`,
  ];
}

/** A tar of the commit's tree on stdout. */
export function archiveArgv(repo: string, commit: string): string[] {
  return ['git', '-C', repoPath(repo), 'archive', '--format=tar', commit];
}
