import { timingSafeEqual, createHash } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AesGcmCodec } from '../client/codec';
import { CodecServerEnv, loadEnv } from '../config';
import { describeIssues } from '../schema/common';

/**
 * The codec server: Temporal's remote codec protocol (POST …/encode and …/decode, Payloads as
 * protobuf JSON), so the Web UI and `temporal workflow show --codec-endpoint` show encrypted
 * payloads in clear to whoever may see them.
 *
 * Auth: every encode/decode needs the token, either as `Authorization: Bearer <token>` (the
 * Temporal CLI's --codec-auth, scripts, a UI behind an auth proxy) or as a path segment,
 * `/codec/<token>/decode`, because the Web UI cannot send a custom header (the protocol lets a
 * codec endpoint sit at any depth: only the last segment says encode or decode). The token never
 * appears in the logs. CORS answers only the Web UI's origins.
 */

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** At least 32 characters. */
  token: string;
  /** Origins allowed to call it from a browser (the Web UI), e.g. http://localhost:8233. */
  uiOrigins: string[];
  logger?: boolean;
}

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
/**
 * Payloads as the callers send them (protobuf JSON, or Go's encoding/json of the same message):
 * an empty list is an empty body, `{}`, since both omit empty fields (the Temporal CLI's query
 * without arguments sends that), and fields this server does not know are ignored, as protobuf
 * JSON readers do.
 */
const PayloadsJson = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string().max(256), Base64).nullish(),
        data: Base64.nullish(),
      }),
    )
    .max(10_000)
    .nullish()
    .transform((p) => p ?? []),
});

function fromJson(body: z.infer<typeof PayloadsJson>): Payload[] {
  return body.payloads.map((p) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
    ),
    data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
  }));
}

function toJson(payloads: Payload[]) {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [
          k,
          Buffer.from(v ?? new Uint8Array()).toString('base64'),
        ]),
      ),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();
/** Constant-time: both sides are hashed to 32 bytes first, so lengths never differ. */
const sameToken = (given: string, expected: string) => timingSafeEqual(digest(given), digest(expected));

/** `/codec/<token>/decode` → `/codec/***\/decode`, for the log. */
export const redactCodecUrl = (url: string) =>
  url.replace(/^\/codec\/[^/?]+\/(encode|decode)/, '/codec/***/$1');

export function createCodecServer(opts: CodecServerOptions): FastifyInstance {
  if (opts.token.length < 32) throw new Error('the codec server token must be at least 32 characters');
  const app = Fastify({
    bodyLimit: 8 * 1024 * 1024,
    logger: opts.logger
      ? {
          serializers: {
            req: (req: FastifyRequest) => ({ method: req.method, url: redactCodecUrl(req.url) }),
          },
        }
      : false,
  });

  const cors = (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    if (origin && opts.uiOrigins.includes(origin)) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Vary', 'Origin');
    }
  };
  app.addHook('onRequest', async (request, reply) => cors(request, reply));

  app.options('/codec/*', async (request, reply) => {
    reply
      .header('Access-Control-Allow-Methods', 'POST, OPTIONS')
      .header('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization')
      .header('Access-Control-Max-Age', '600')
      .code(204)
      .send();
  });

  const handle =
    (direction: 'encode' | 'decode', tokenFrom: 'header' | 'path') =>
    async (request: FastifyRequest<{ Params: { token?: string } }>, reply: FastifyReply) => {
      const given =
        tokenFrom === 'path'
          ? (request.params.token ?? '')
          : (/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
      if (!sameToken(given, opts.token))
        return reply.code(401).send({ error: 'unauthorized', message: 'a valid codec token is required' });
      const body = PayloadsJson.safeParse(request.body ?? {});
      if (!body.success)
        return reply.code(400).send({ error: 'invalid_request', message: describeIssues(body.error) });
      try {
        const payloads = fromJson(body.data);
        const out =
          direction === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
        return reply.send(toJson(out));
      } catch (err) {
        return reply
          .code(422)
          .send({ error: 'codec_failed', message: err instanceof Error ? err.message : String(err) });
      }
    };
  for (const direction of ['encode', 'decode'] as const) {
    app.post(`/codec/${direction}`, handle(direction, 'header'));
    app.post(`/codec/:token/${direction}`, handle(direction, 'path'));
  }
  return app;
}

/** The URL to give the Web UI (`--ui-codec-endpoint`): the token rides in the path. */
export function uiCodecEndpoint(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/$/, '')}/codec/${encodeURIComponent(token)}`;
}

/** `npm run codec-server`: the codec server alone (config/: QM_CODEC_KEY, QM_CODEC_TOKEN, QM_CODEC_PORT…). */
async function main() {
  const env = loadEnv(CodecServerEnv);
  const app = createCodecServer({
    codec: new AesGcmCodec(env.QM_CODEC_KEY),
    token: env.QM_CODEC_TOKEN,
    uiOrigins: env.QM_CODEC_UI_ORIGINS.split(',').map((o) => o.trim()),
    logger: true,
  });
  await app.listen({ host: env.QM_CODEC_HOST, port: env.QM_CODEC_PORT });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void app.close());
}

if (require.main === module)
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
