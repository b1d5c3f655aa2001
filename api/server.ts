import { isGrpcServiceError, type Client } from '@temporalio/client';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { z } from 'zod';
import {
  IdempotencyConflictError,
  IdempotencyKey,
  NoWorkerError,
  OperationId,
  readOperation,
  readSite,
  SiteNotFoundError,
  startOperation,
  type OperationKind,
} from '../client/operations';
import { InvalidInputError } from '../schema/common';
import { gitHookPlugin } from './gitHook';
import { openApiDocument } from './openapi';
import { ReplayGuard } from './replayGuard';
import {
  BackupRequest,
  ChangePlanRequest,
  DeployRequest,
  DeprovisionRequest,
  fieldErrors,
  ProvisionRequest,
  RepairRequest,
  RestoreRequest,
  ResumeRequest,
  RollbackRequest,
  SiteParams,
  SuspendRequest,
} from './requests';
import { checkTimestamp, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from './signature';

/**
 * The billing API (see openapi.ts for the contract). Every /v1 request is checked in this order,
 * and any failure answers a 4xx before anything is started:
 *   timestamp in the window (before the body is read) → body ≤ 64 KiB, JSON content type →
 *   signature over the raw body, not seen before → path, Idempotency-Key and body against the
 *   workflows' own schemas → the operation.
 */

export const BODY_LIMIT = 64 * 1024;

export interface ApiOptions {
  /** A Temporal client (with the payload codec: it carries customer data). */
  client: Client;
  /** Where the operations' workflows run. */
  taskQueue: string;
  /** One or two signing secrets (two while rotating). */
  secrets: readonly string[];
  /** Who signs with these secrets: TriggeredBy is `api:<clientName>`. */
  clientName?: string;
  logger?: FastifyServerOptions['logger'];
  replayCapacity?: number;
  /** The clock, in unix seconds (tests). */
  now?: () => number;
  /** The Git webhook's signing secrets (QM_GIT_HOOK_SECRETS): with one, POST /hooks/git is served (api/gitHook.ts). */
  gitHookSecrets?: readonly string[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false: no signature needed (health, OpenAPI). */
    auth?: boolean;
  }
}

type Fields = Record<string, string>;
const invalid = (reply: FastifyReply, fields: Fields) =>
  reply.code(400).send({ error: 'invalid_request', fields });
const unauthorized = (reply: FastifyReply, reason: string) =>
  reply.code(401).send({ error: 'unauthorized', message: `signature ${reason}` });

/** Temporal did not answer (gRPC UNAVAILABLE or DEADLINE_EXCEEDED), anywhere in the cause chain. */
function temporalUnreachable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if (isGrpcServiceError(e) && [4, 14].includes(e.code)) return true;
  return false;
}

/** The raw body, parsed: empty is `{}`; anything not JSON is a field error. */
function parseBody(body: unknown): { ok: true; value: unknown } | { ok: false; fields: Fields } {
  const raw = Buffer.isBuffer(body) ? body.toString('utf8') : '';
  if (raw.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false, fields: { '(body)': 'the body is not valid JSON' } };
  }
}

/** Check everything a request carries; every bad field at once. */
function validate<S extends z.ZodType>(
  request: FastifyRequest,
  bodySchema: S,
  opts: { params: boolean; key: boolean },
): { ok: true; body: z.output<S>; siteId?: string; key: string } | { ok: false; fields: Fields } {
  let fields: Fields = {};
  let siteId: string | undefined;
  let key = '';
  if (opts.params) {
    const p = SiteParams.safeParse(request.params);
    if (p.success) siteId = p.data.siteId;
    else fields = { ...fields, ...fieldErrors(p.error, 'params') };
  }
  if (opts.key) {
    const k = IdempotencyKey.safeParse(request.headers['idempotency-key']);
    if (k.success) key = k.data;
    else fields = { ...fields, ...fieldErrors(k.error, 'headers.idempotency-key') };
  }
  const raw = parseBody(request.body);
  if (!raw.ok) return { ok: false, fields: { ...fields, ...raw.fields } };
  const b = bodySchema.safeParse(raw.value);
  if (!b.success) fields = { ...fields, ...fieldErrors(b.error) };
  if (Object.keys(fields).length || !b.success) return { ok: false, fields };
  return { ok: true, body: b.data, siteId, key };
}

export function buildApi(opts: ApiOptions): FastifyInstance {
  if (!opts.secrets.length) throw new Error('the API needs at least one signing secret');
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const guard = new ReplayGuard(opts.replayCapacity);
  const { client } = opts;
  const triggeredBy = `api:${opts.clientName ?? 'billing'}`;

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: BODY_LIMIT,
    // Long ids reach the schemas (a 400 naming the field); Node caps the whole URL (16 KiB of headers).
    routerOptions: { maxParamLength: 4096 },
    requestTimeout: 30_000,
    return503OnClosing: true,
  });

  // Only JSON, kept raw: the signature covers the exact bytes sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config.auth === false || !request.routeOptions.url) return;
    const t = checkTimestamp(request.headers[TIMESTAMP_HEADER], now());
    if (!t.ok) return unauthorized(reply, `timestamp ${t.reason}`);
  });

  app.addHook('preHandler', async (request, reply) => {
    if (request.routeOptions.config.auth === false || !request.routeOptions.url) return;
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const verdict = verify(
      { timestamp: request.headers[TIMESTAMP_HEADER], signature: request.headers[SIGNATURE_HEADER] },
      { method: request.method, path: request.url, body },
      opts.secrets,
      now(),
    );
    if (!verdict.ok) return unauthorized(reply, verdict.reason);
    // A replayed read shows no more than its first answer did; a replayed write could act again.
    // Reads are not remembered, so a client polling an operation twice in a second is not refused.
    if (request.method === 'GET' || request.method === 'HEAD') return;
    const seen = guard.check(verdict.digest, verdict.expiresAt, now());
    if (seen === 'replay') return unauthorized(reply, 'already used (replay)');
    if (seen === 'full')
      return reply
        .code(503)
        .header('Retry-After', '5')
        .send({ error: 'busy', message: 'too many signed requests in the window; retry shortly' });
  });

  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: 'not_found', message: 'no such route' }),
  );

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413)
      return reply
        .code(413)
        .send({ error: 'payload_too_large', message: `the body is over ${BODY_LIMIT} bytes` });
    if (status === 415)
      return reply.code(415).send({
        error: 'unsupported_media_type',
        message: 'send the body as Content-Type: application/json',
      });
    if (status >= 400 && status < 500)
      return reply.code(status).send({ error: 'bad_request', message: err.message });
    if (err instanceof NoWorkerError || temporalUnreachable(err)) {
      request.log.warn({ err }, 'Temporal unavailable');
      return reply.code(503).send({ error: 'temporal_unavailable', message: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error (logged)' });
  });

  if (opts.gitHookSecrets?.length)
    void app.register(gitHookPlugin, {
      client,
      taskQueue: opts.taskQueue,
      secrets: opts.gitHookSecrets,
      now: opts.now,
    });

  app.get('/healthz', { config: { auth: false } }, async (_request, reply) => {
    try {
      await client.connection.withDeadline(Date.now() + 2000, () => client.workflowService.getSystemInfo({}));
      return { status: 'ok', temporal: 'ok' };
    } catch (err) {
      return reply
        .code(503)
        .send({ status: 'unavailable', temporal: err instanceof Error ? err.message : String(err) });
    }
  });

  const document = openApiDocument();
  app.get('/openapi.json', { config: { auth: false } }, async () => document);

  /** A route that starts an operation on the site named by `siteOf`. */
  function start<S extends z.ZodType>(
    kind: OperationKind,
    bodySchema: S,
    siteOf: (v: { body: z.output<S>; siteId?: string }) => string,
    inputOf: (v: { body: z.output<S>; siteId: string }) => Record<string, unknown>,
  ) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      const v = validate(request, bodySchema, { params: kind !== 'provision', key: true });
      if (!v.ok) return invalid(reply, v.fields);
      const siteId = siteOf(v);
      try {
        const op = await startOperation(client, {
          kind,
          siteId,
          key: v.key,
          input: { ...inputOf({ body: v.body, siteId }), triggeredBy },
          taskQueue: opts.taskQueue,
          triggeredBy,
        });
        return reply
          .code(op.created ? 202 : 200)
          .header('Location', `/v1/operations/${encodeURIComponent(op.operationId)}`)
          .send(op);
      } catch (err) {
        if (err instanceof InvalidInputError && err.zodError)
          return invalid(reply, fieldErrors(err.zodError));
        if (err instanceof SiteNotFoundError)
          return reply.code(404).send({ error: 'site_not_found', message: err.message });
        if (err instanceof IdempotencyConflictError)
          return reply.code(409).send({ error: 'idempotency_key_reused', message: err.message });
        throw err;
      }
    };
  }

  app.post(
    '/v1/sites',
    start(
      'provision',
      ProvisionRequest,
      ({ body }) => body.site.siteId,
      ({ body }) => ({ site: body.site }),
    ),
  );

  /** An operation on an existing site: the body's fields and the site id from the path. */
  const onSite = <S extends z.ZodType>(kind: OperationKind, body: S, extra: Record<string, unknown> = {}) =>
    start(
      kind,
      body,
      ({ siteId }) => siteId!,
      ({ body, siteId }) => ({ ...(body as Record<string, unknown>), ...extra, siteId }),
    );
  app.post('/v1/sites/:siteId/suspend', onSite('suspend', SuspendRequest));
  app.post('/v1/sites/:siteId/resume', onSite('resume', ResumeRequest));
  app.delete('/v1/sites/:siteId', onSite('deprovision', DeprovisionRequest));
  app.patch('/v1/sites/:siteId/plan', onSite('change-plan', ChangePlanRequest));
  app.post('/v1/sites/:siteId/backups', onSite('backup', BackupRequest, { kind: 'on-demand' }));
  app.post('/v1/sites/:siteId/restore', onSite('restore', RestoreRequest));
  app.post('/v1/sites/:siteId/deploy', onSite('deploy', DeployRequest));
  app.post('/v1/sites/:siteId/rollback', onSite('rollback', RollbackRequest));
  app.post('/v1/sites/:siteId/repair', onSite('repair', RepairRequest));

  app.get('/v1/sites/:siteId', async (request, reply) => {
    const p = SiteParams.safeParse(request.params);
    if (!p.success) return invalid(reply, fieldErrors(p.error, 'params'));
    const site = await readSite(client, p.data.siteId);
    if (!site)
      return reply.code(404).send({ error: 'site_not_found', message: `site ${p.data.siteId} is not known` });
    return {
      siteId: p.data.siteId,
      workflowStatus: site.status,
      record: site.view?.record ?? null,
      holder: site.view?.holder ?? null,
      queue: site.view?.queue ?? [],
    };
  });

  app.get('/v1/operations/:id', async (request, reply) => {
    const id = OperationId.safeParse((request.params as { id?: unknown }).id);
    if (!id.success) return invalid(reply, fieldErrors(id.error, 'params.id'));
    const op = await readOperation(client, id.data);
    if (!op) return reply.code(404).send({ error: 'not_found', message: `no operation ${id.data.id}` });
    return op;
  });

  return app;
}
