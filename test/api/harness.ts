import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import type { GitHookConfig } from '../../activities/git/activities';
import { buildApi } from '../../api/server';
import { sign } from '../../api/signature';
import { AesGcmCodec, dataConverterFor, keyId } from '../../client/codec';
import { createWorker } from '../../workers/worker';
import type { Bed } from '../support/bed';
import { uniqueTaskQueue } from '../support/temporal';

/**
 * The billing API as it runs in production, on a real port, against the jest setup's Temporal dev
 * server, with a fresh signing secret, a fresh payload key and its own task queue; the real worker
 * (workers/worker.ts, with the same codec) when a test needs operations to run.
 */

export const SECRET = randomBytes(32).toString('hex');
export const OLD_SECRET = randomBytes(32).toString('hex');

export interface Api {
  url: string;
  app: FastifyInstance;
  taskQueue: string;
  /** A client with the codec (what the API and the worker use). */
  client: Client;
  /** A client without the codec: sees what Temporal stores. */
  rawClient: Client;
  codec: AesGcmCodec;
  /** QM_CODEC_KEY for a process (the CLI) that must read what this API writes. */
  codecKey: string;
  close(): Promise<void>;
}

export async function startApi(
  env: TestWorkflowEnvironment,
  opts: {
    replayCapacity?: number;
    /** Where to listen (default 127.0.0.1; the bed's bridge address for the Git hook to reach). */
    host?: string;
    /** Serve POST /hooks/git with this secret. */
    gitHookSecret?: string;
  } = {},
): Promise<Api> {
  const key = randomBytes(32);
  const codec = new AesGcmCodec([{ id: keyId(key), key }]);
  const client = new Client({
    connection: env.connection,
    namespace: 'default',
    dataConverter: dataConverterFor(codec),
  });
  const rawClient = new Client({ connection: env.connection, namespace: 'default' });
  const taskQueue = uniqueTaskQueue('api');
  const app = buildApi({
    client,
    taskQueue,
    secrets: [SECRET, OLD_SECRET],
    clientName: 'test',
    logger: process.env.QM_API_TEST_LOG ? { level: 'warn' } : false, // the API's own log, to debug a test
    replayCapacity: opts.replayCapacity,
    ...(opts.gitHookSecret ? { gitHookSecrets: [opts.gitHookSecret] } : {}),
  });
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    app,
    taskQueue,
    client,
    rawClient,
    codec,
    codecKey: key.toString('base64'),
    async close() {
      await app.close();
      await terminateAll(client, taskQueue);
    },
  };
}

/** Terminate whatever still runs on the task queue (operations and the site workflows they started). */
export async function terminateAll(client: Client, taskQueue: string): Promise<void> {
  for await (const wf of client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`,
  }))
    await client.workflow
      .getHandle(wf.workflowId, wf.runId)
      .terminate('test cleanup')
      .catch(() => undefined);
}

/** The real worker on the API's task queue, with the codec, while `fn` runs. */
export async function withApiWorker<T>(
  bed: Bed,
  api: Api,
  fn: () => Promise<T>,
  gitHook?: GitHookConfig,
): Promise<T> {
  const codePath = process.env.QM_TEST_WORKFLOW_BUNDLE;
  if (!codePath) throw new Error('QM_TEST_WORKFLOW_BUNDLE is not set: run the tests through jest');
  const worker = await createWorker({
    connection: bed.env.nativeConnection,
    taskQueue: api.taskQueue,
    fleet: bed.fleet,
    client: api.client,
    workflowBundle: { codePath },
    dataConverter: dataConverterFor(api.codec),
    gitHook,
  });
  return worker.runUntil(fn());
}

export interface Sent {
  method?: string;
  path: string;
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
  headers?: Record<string, string | string[]>;
  /** The secret to sign with (default SECRET); false: unsigned. */
  secret?: string | false;
  timestamp?: number;
  idempotencyKey?: string;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: Record<string, unknown> & { error?: string; fields?: Record<string, string> };
  text: string;
}

/** One HTTP request, signed like the billing system signs (unless told otherwise). */
export function request(api: Pick<Api, 'url'>, s: Sent): Promise<Answer> {
  const raw =
    s.body === undefined
      ? Buffer.alloc(0)
      : Buffer.isBuffer(s.body)
        ? s.body
        : Buffer.from(typeof s.body === 'string' ? s.body : JSON.stringify(s.body));
  const headers: Record<string, string | string[]> = {};
  if (s.body !== undefined) headers['content-type'] = 'application/json';
  if (s.idempotencyKey !== undefined) headers['idempotency-key'] = s.idempotencyKey;
  const put = (from: Record<string, string | string[]>) => {
    for (const [k, v] of Object.entries(from)) headers[k.toLowerCase()] = v; // names are case-insensitive
  };
  if (s.secret !== false)
    put(sign(s.secret ?? SECRET, { method: s.method ?? 'GET', path: s.path, body: raw }, s.timestamp));
  put(s.headers ?? {});
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];
  return rawRequest(api.url, s.method ?? 'GET', s.path, headers, raw);
}

export function rawRequest(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  body: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Framed like any real client frames it (Node sends a DELETE's body unframed otherwise).
    const framed =
      body.length && !('content-length' in headers)
        ? { ...headers, 'content-length': String(body.length) }
        : headers;
    // The path goes out byte for byte (a URL string would be re-encoded: the signature covers it).
    const { hostname, port } = new URL(base);
    const req = http.request({ hostname, port, path, method, headers: framed, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = {};
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: the test looks at text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
      });
      res.on('error', reject);
    });
    // The server may answer (413, 401) and close before the whole body is sent.
    req.on('error', (err: NodeJS.ErrnoException) =>
      ['EPIPE', 'ECONNRESET'].includes(err.code ?? '')
        ? resolve({ status: -1, headers: {}, json: {}, text: err.code! })
        : reject(err),
    );
    if (body.length) req.end(body);
    else req.end();
  });
}

/** Workflow ids from visibility matching a query. */
export async function listIds(client: Client, query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids.sort();
}

export function uniqueSiteId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
}
