import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { deployPush, type PushDeployOptions } from '../client/pushDeploys';
import { CommitId } from '../schema/release';
import { GitBranch, GitRepo } from '../schema/site';
import { ReplayGuard } from './replayGuard';
import { parseJsonStrict } from './requests';
import { checkTimestamp, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from './signature';

/**
 * The Git webhook: POST /hooks/git, from the post-receive hook on the Git host
 * (activities/git/post-receive.pl), signed with the Git hook's own secret (not the billing
 * client's) in the API's scheme (api/signature.ts), never accepted twice (ReplayGuard).
 *
 * A push of commit C to branch B of repository R starts one deployRelease per active site that
 * tracks (R, B), with the workflow id `deploy:<site>:<C>` and REJECT_DUPLICATE
 * (client/pushDeploys.ts): the hook retries until it hears back, so the same notification may come
 * twice, and never deploys twice. Sites on other repositories or branches are not touched. Each
 * deploy checks, once it holds the site's lock, that C is still the branch's head (coalescing:
 * pushes that queued behind a running deploy end as `superseded`, and only the newest deploys).
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

export interface GitHookOptions extends PushDeployOptions {
  client: Client;
  /** The Git hook's signing secrets (one, or two while rotating). */
  secrets: readonly string[];
  now?: () => number;
  replayCapacity?: number;
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
    const time = checkTimestamp(request.headers[TIMESTAMP_HEADER], now(), {
      value: request.headers[NONCE_HEADER],
    });
    if (!time.ok)
      return reply
        .code(401)
        .send(`signature ${time.reason.startsWith('nonce') ? '' : 'timestamp '}${time.reason}\n`);
    const verdict = verify(
      {
        timestamp: request.headers[TIMESTAMP_HEADER],
        nonce: request.headers[NONCE_HEADER],
        signature: request.headers[SIGNATURE_HEADER],
      },
      { method: request.method, path: request.url, body },
      opts.secrets,
      now(),
    );
    if (!verdict.ok) return reply.code(401).send(`signature ${verdict.reason}\n`);
    if (guard.check(verdict.nonce, verdict.expiresAt, now()) !== 'fresh')
      return reply.code(401).send('signature nonce already used (replay)\n');

    let push: PushNotification;
    try {
      const parsed = parseJsonStrict(body.toString('utf8'));
      if (!parsed.ok) return reply.code(400).send(`bad notification: ${parsed.path}: given more than once\n`);
      push = PushNotification.parse(parsed.value);
    } catch (err) {
      const message =
        err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`) : ['not JSON'];
      return reply.code(400).send(`bad notification: ${message.join('; ')}\n`);
    }
    const branch = GitBranch.parse(push.ref.slice('refs/heads/'.length));
    const { repo, before, pusher, pushedAt } = push;
    const deploys = await deployPush(opts.client, opts, push.after, {
      repo,
      branch,
      before,
      pusher,
      pushedAt,
    });
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
