import { GitBranch, GitRepo } from '../../schema/site';

/**
 * What names a Git object or repository on the platform's Git host. Everything is checked here,
 * before it reaches a command line: a commit is exactly 40 lowercase hex digits, a ref is a safe
 * subset of git's ref names (never starting with `-`, so never an option).
 */

export { GitBranch, GitRepo };

export { CommitId, GitRef } from '../../schema/release';

/** Where the platform's bare repositories are on the Git host. */
export const GIT_ROOT = '/srv/git';
/** The hook's own files on the Git host: the script, its config, its secret, its spool. */
export const HOOK_DIR = '/srv/qm/git';

export const repoPath = (repo: string) => `${GIT_ROOT}/${GitRepo.parse(repo)}`;
