import { z } from 'zod';
import { activityIO } from '../context';
import { failure, FailureType } from '../errors';
import type { Fleet } from '../fleet';
import { parseInput } from '../input';
import {
  ensureRepoArgv,
  HOOK_SCRIPT,
  hookPaths,
  linkHookArgv,
  removeRepoArgv,
  resolveRefArgv,
  writeFileArgv,
} from './commands';
import { SiteId } from '../../schema/site';
import { CommitId, GIT_ROOT, GitBranch, GitRef, GitRepo } from './refs';

/**
 * Where the post-receive hook tells the platform about pushes, and the secret it signs with. Worker
 * configuration, never workflow input, so the secret never enters history: given at worker start
 * (config/: QM_GIT_HOOK_URL and QM_GIT_HOOK_SECRET_FILE).
 */
export interface GitHookConfig {
  url: string;
  secret: string;
}

const HookUrl = z.url({ protocol: /^https?$/ }).max(500);
const EnsureGitRepoInput = z.strictObject({
  repo: GitRepo,
  /** The site whose provisioning asks (kept in the new repository's config: see removeGitRepo). */
  createdBy: SiteId.optional(),
  /**
   * required (default): a worker without the hook configuration fails (InvalidInput).
   * if-configured: the repository is made and linked to the shared hook all the same, and the
   * result says `not-configured` (provisioning on a worker that was given no webhook).
   */
  hook: z.enum(['required', 'if-configured']).default('required'),
});
const RemoveGitRepoInput = z.strictObject({ repo: GitRepo, createdBy: SiteId });
const ResolveGitRefInput = z.strictObject({ repo: GitRepo, ref: GitRef });
const BranchHeadInput = z.strictObject({ repo: GitRepo, branch: GitBranch });

const QUICK_MS = 60_000;

/** The Git activities: the platform's bare repositories on the host with role `git`. */
export function makeGitActivities(fleet: Fleet, hook: GitHookConfig | undefined) {
  const pool = fleet.pool;
  const gitHost = () => {
    const host = fleet.hosts.find((h) => h.roles.includes('git'));
    if (!host) throw failure(FailureType.InvalidInput, 'the fleet has no git host');
    return host.name;
  };
  const exec = (argv: string[], opts: { stdin?: string; check?: boolean } = {}) =>
    pool.exec(gitHost(), argv, { ...activityIO(), timeoutMs: QUICK_MS, ...opts });

  return {
    /**
     * The repository /srv/git/<repo> on the Git host, bare, with the platform's post-receive hook:
     * the shared hook script, its config (the platform's URL) and its secret (mode 0600, sent on
     * stdin, never on a command line), then hooks/post-receive linked to the script. Safe twice:
     * the repository is created only if absent (made aside, renamed into place: one that exists is
     * complete, and of two runs at once one creates and the other finds it), each file is replaced
     * only if its content differs (write to a temporary name, then rename), the link only if it
     * points elsewhere. With `hook: 'if-configured'` and no hook configuration on this worker, the
     * script, config and secret are left as they are (`hook: 'not-configured'`); the link is made
     * all the same, so the repository delivers once a configured worker installs the script.
     */
    async ensureGitRepo(input: z.input<typeof EnsureGitRepoInput>): Promise<{
      repo: string;
      host: string;
      path: string;
      repository: 'created' | 'existing';
      hook: 'installed' | 'unchanged' | 'not-configured';
    }> {
      const { repo, createdBy, hook: wanted } = parseInput(EnsureGitRepoInput, input, 'ensureGitRepo');
      if (!hook && wanted === 'required')
        throw failure(
          FailureType.InvalidInput,
          'this worker has no Git hook configuration (QM_GIT_HOOK_URL and QM_GIT_HOOK_SECRET_FILE)',
        );
      if (hook && (!HookUrl.safeParse(hook.url).success || hook.secret.length < 32))
        throw failure(
          FailureType.InvalidInput,
          'the Git hook configuration is unusable: an http(s) URL and a secret of at least 32 characters are needed',
        );
      const created = (await exec(ensureRepoArgv(repo, createdBy))).stdout.trim();
      const results = hook
        ? [
            (await exec(writeFileArgv(hookPaths.script, '0755'), { stdin: HOOK_SCRIPT })).stdout.trim(),
            (
              await exec(writeFileArgv(hookPaths.config, '0644'), {
                stdin: JSON.stringify({ url: hook.url, gitRoot: GIT_ROOT }) + '\n',
              })
            ).stdout.trim(),
            (
              await exec(writeFileArgv(hookPaths.secret, '0600'), { stdin: hook.secret + '\n' })
            ).stdout.trim(),
          ]
        : [];
      results.push((await exec(linkHookArgv(repo))).stdout.trim());
      return {
        repo,
        host: gitHost(),
        path: `${GIT_ROOT}/${repo}`,
        repository: created === 'created' ? 'created' : 'existing',
        hook: !hook ? 'not-configured' : results.every((r) => r === 'unchanged') ? 'unchanged' : 'installed',
      };
    },

    /**
     * The undo of a provision's ensureGitRepo: remove the repository only if this site's
     * provisioning created it (`qm.createdBy` in its config) and nothing was ever pushed to it.
     * A repository another site made (sites may share one), or one holding commits, is kept and
     * the result says why. Safe twice: the second run finds it `absent`.
     */
    async removeGitRepo(input: z.input<typeof RemoveGitRepoInput>): Promise<{
      repo: string;
      result: 'removed' | 'absent' | 'not-created-by-site' | 'has-commits';
    }> {
      const { repo, createdBy } = parseInput(RemoveGitRepoInput, input, 'removeGitRepo');
      const out = (await exec(removeRepoArgv(repo, createdBy))).stdout.trim();
      if (!['removed', 'absent', 'not-created-by-site', 'has-commits'].includes(out))
        throw failure(
          FailureType.CommandFailed,
          `removeGitRepo ${repo}: unexpected output ${out.slice(0, 200)}`,
          { host: gitHost(), repo },
        );
      return { repo, result: out as 'removed' | 'absent' | 'not-created-by-site' | 'has-commits' };
    },

    /**
     * The full commit id a ref (branch, tag, abbreviated id) names in the repository now. Read-only.
     * An unknown ref is InvalidInput (never retried): the caller named something that is not there.
     */
    async resolveGitRef(input: z.input<typeof ResolveGitRefInput>): Promise<{ commit: string }> {
      const { repo, ref } = parseInput(ResolveGitRefInput, input, 'resolveGitRef');
      const r = await exec(resolveRefArgv(repo, ref), { check: false });
      const commit = r.stdout.trim();
      if (r.code !== 0 || !CommitId.safeParse(commit).success)
        throw failure(FailureType.InvalidInput, `${repo} has no commit named ${ref}`, {
          host: gitHost(),
          repo,
          ref,
        });
      return { commit };
    },

    /**
     * The commit a branch points at now, or null if there is no such branch (or repository).
     * Read-only: what a deploy of an older push compares its commit with (coalescing).
     */
    async gitBranchHead(input: z.input<typeof BranchHeadInput>): Promise<{ commit: string | null }> {
      const { repo, branch } = parseInput(BranchHeadInput, input, 'gitBranchHead');
      const r = await exec(resolveRefArgv(repo, `refs/heads/${branch}`), { check: false });
      const commit = r.stdout.trim();
      return { commit: r.code === 0 && CommitId.safeParse(commit).success ? commit : null };
    },
  };
}

export type GitActivities = ReturnType<typeof makeGitActivities>;
