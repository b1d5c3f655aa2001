import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { CommitId } from '../schema/release';
import { GitBranch, GitRepo } from '../schema/site';
import { siteQuery } from '../protocol/site';
import type { DeployReleaseInput } from '../protocol/operations';
import { deployWorkflowId } from '../protocol/ids';
import { ReplayGuard } from './replayGuard';
import { checkTimestamp, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from './signature';

/**
 * The Git webhook: POST /hooks/git, from the post-receive hook on the Git host
 * (activities/git/post-receive.pl), signed with the Git hook's own secret (not the billing
 * client's) in the API's scheme (api/signature.ts), never accepted twice (ReplayGuard).
 *
 * A push of commit C to branch B of repository R starts one deployRelease per active site that
 * tracks (R, B), with the workflow id `deploy:<site>:<C>` and REJECT_DUPLICATE: the hook retries
 * until it hears back, so the same notification may come twice, and never deploys twice. Sites on
 * other repositories or branches are not touched. Each deploy checks, once it holds the site's
 * lock, that C is still the branch's head (coalescing: pushes that queued behind a running deploy
 * end as `superseded`, and only the newest deploys).
 *
 * Plugs into the API (api/server.ts: `app.register(gitHookPlugin, …)`) or runs on its own Fastify.
 */

export const GIT_HOOK_PATH = '/hooks/git';
const BODY_LIMIT = 16 * 1024;

export const PushNotification = z.strictObject({
  repo: GitRepo,
  ref: z.string().startsWith('refs/heads/', 'only branches deploy').max(120),
  before: z.string().regex(/^[0-9a-f]{40}$/, 'before must be 40 hex digits'),
  after: CommitId,
  pusher: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[\x21-\x7e]+$/, 'pusher must be printable ASCII, no spaces'),
  pushedAt: z.string().max(40).optional(),
});
export type PushNotification = z.infer<typeof PushNotification>;

export interface GitHookOptions {
  client: Client;
  /** Where the site workflows (and so the deploys) run. */
  taskQueue: string;
  /** The Git hook's signing secrets (one, or two while rotating). */
  secrets: readonly string[];
  /** Settings every push deploy gets (e.g. a shorter drain in tests). */
  deployDefaults?: Pick<DeployReleaseInput, 'drainSeconds' | 'healthTimeoutSeconds' | 'keepReleases'>;
  now?: () => number;
  replayCapacity?: number;
}

export interface PushDeploy {
  siteId: string;
  workflowId: string;
  /** started: a new deploy; duplicate: this notification (or an identical one) already started it. */
  status: 'started' | 'duplicate';
}

/**
 * The active sites whose record says they track `repo` and `branch`: every running site workflow
 * on the task queue (visibility), each asked for its record (the `site` query, 16 at a time).
 */
export async function sitesTracking(
  client: Client,
  taskQueue: string,
  repo: string,
  branch: string,
): Promise<string[]> {
  const ids: string[] = [];
  const query = `WorkflowType = 'site' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, '')}'`;
  for await (const w of client.workflow.list({ query })) ids.push(w.workflowId);
  const tracking: string[] = [];
  for (let n = 0; n < ids.length; n += 16)
    await Promise.all(
      ids.slice(n, n + 16).map(async (id) => {
        const { record } = await client.workflow.getHandle(id).query(siteQuery);
        if (record.state === 'active' && record.spec?.git.repo === repo && record.spec.git.branch === branch)
          tracking.push(record.siteId);
      }),
    );
  return tracking.sort();
}

/** One deploy per site tracking the pushed branch; a repeated notification starts nothing new. */
export async function deployPush(opts: GitHookOptions, push: PushNotification): Promise<PushDeploy[]> {
  const branch = GitBranch.parse(push.ref.slice('refs/heads/'.length));
  const sites = await sitesTracking(opts.client, opts.taskQueue, push.repo, branch);
  return Promise.all(
    sites.map(async (siteId): Promise<PushDeploy> => {
      const workflowId = deployWorkflowId(siteId, push.after);
      const input: DeployReleaseInput = {
        ...opts.deployDefaults,
        siteId,
        commit: push.after,
        push: { repo: push.repo, branch, before: push.before, pusher: push.pusher, pushedAt: push.pushedAt },
        triggeredBy: `push:${push.pusher}`,
      };
      try {
        await opts.client.workflow.start('deployRelease', {
          taskQueue: opts.taskQueue,
          workflowId,
          args: [input],
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
        });
        return { siteId, workflowId, status: 'started' };
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError)
          return { siteId, workflowId, status: 'duplicate' };
        throw err;
      }
    }),
  );
}

/** The webhook route, in its own Fastify context (raw JSON bodies, its own secrets). */
export const gitHookPlugin: FastifyPluginAsync<GitHookOptions> = async (app: FastifyInstance, opts) => {
  if (!opts.secrets.length) throw new Error('the Git webhook needs at least one signing secret');
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const guard = new ReplayGuard(opts.replayCapacity);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );

  app.post(GIT_HOOK_PATH, { config: { auth: false }, bodyLimit: BODY_LIMIT }, async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const time = checkTimestamp(request.headers[TIMESTAMP_HEADER], now());
    if (!time.ok) return reply.code(401).send(`signature: timestamp ${time.reason}\n`);
    const verdict = verify(
      { timestamp: request.headers[TIMESTAMP_HEADER], signature: request.headers[SIGNATURE_HEADER] },
      { method: request.method, path: request.url, body },
      opts.secrets,
      now(),
    );
    if (!verdict.ok) return reply.code(401).send(`signature ${verdict.reason}\n`);
    if (guard.check(verdict.digest, verdict.expiresAt, now()) !== 'fresh')
      return reply.code(401).send('signature already used (replay)\n');

    let push: PushNotification;
    try {
      push = PushNotification.parse(JSON.parse(body.toString('utf8')));
    } catch (err) {
      const message =
        err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`) : ['not JSON'];
      return reply.code(400).send(`bad notification: ${message.join('; ')}\n`);
    }
    const deploys = await deployPush(opts, push);
    request.log.info({ repo: push.repo, ref: push.ref, after: push.after, deploys }, 'push');
    if ((request.headers.accept ?? '').includes('application/json'))
      return reply.send({ repo: push.repo, ref: push.ref, commit: push.after, deploys });
    const lines = deploys.length
      ? deploys.map(
          (d) =>
            `${d.status === 'started' ? 'deploying' : 'already deploying'} ${push.after.slice(0, 12)} to ${d.siteId} (${d.workflowId})`,
        )
      : [`no site tracks ${push.repo} ${push.ref.slice('refs/heads/'.length)}: nothing to deploy`];
    return reply.type('text/plain').send(lines.join('\n') + '\n');
  });
};
