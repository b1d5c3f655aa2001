import fs from 'node:fs';
import { z } from 'zod';
import { CodecKeys } from '../client/codec';

/**
 * The processes' configuration, from the environment, validated at start: one schema per process
 * (worker, API, `qm`, codec server, Temporal set-up), one loader (loadEnv) whose error names every
 * missing or bad variable, never their values (paths are shown, they are not secrets).
 * deploy/stack.env.example documents the production stack's variables.
 */

const unset = (v: unknown) => (v === '' ? undefined : v);
/** An optional variable: an empty value (`X=` in an env file) counts as unset. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(unset, schema.optional());

function isReadableFile(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.R_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** A path to a file this process can read (checked now, not at first use at 3 a.m.). */
export const readableFile = z
  .string()
  .min(1)
  .refine(isReadableFile, { error: (issue) => `no readable file at ${String(issue.input)}` });

const port = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a port number (0-65535)' })
    .int('must be a port number (0-65535)')
    .min(0, 'must be a port number (0-65535)')
    .max(65535, 'must be a port number (0-65535)')
    .default(fallback);
const seconds = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a whole number of seconds' })
    .int('must be a whole number of seconds')
    .min(1, 'must be at least 1 second')
    .default(fallback);
const flag = z
  .enum(['0', '1', 'true', 'false'], { error: 'must be 1/true or 0/false' })
  .default('0')
  .transform((v) => v === '1' || v === 'true');

export const LogLevel = z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']);
export type LogLevel = z.infer<typeof LogLevel>;

/** Where Temporal is, and the task queue the workflows run on: the same for every process. */
const TEMPORAL_ADDRESS = z.string().min(1).default('127.0.0.1:7233');
const TEMPORAL_NAMESPACE = z.string().min(1).default('default');
const QM_TASK_QUEUE = z.string().min(1).default('quartermaster');

/** Where Temporal is, for the API and `qm`. */
export const TemporalEnv = z.object({ TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, QM_TASK_QUEUE });
export type TemporalEnv = z.infer<typeof TemporalEnv>;

/**
 * Where Temporal is and how to reach it, for the worker and the set-up. Without TLS variables the
 * connection is plain gRPC (the dev server, a cluster on a private network); TEMPORAL_TLS=1 uses
 * the system CAs (e.g. Temporal Cloud); a CA file pins the server's CA; a client certificate and
 * key (both or neither) are mTLS.
 */
const temporalFields = {
  TEMPORAL_ADDRESS,
  TEMPORAL_NAMESPACE,
  TEMPORAL_TLS: flag,
  TEMPORAL_TLS_CA: optional(readableFile),
  TEMPORAL_TLS_CERT: optional(readableFile),
  TEMPORAL_TLS_KEY: optional(readableFile),
  TEMPORAL_TLS_SERVER_NAME: optional(z.string().min(1)),
};

type TemporalFields = {
  TEMPORAL_TLS_CERT?: string;
  TEMPORAL_TLS_KEY?: string;
};
const certAndKeyTogether = (env: TemporalFields, ctx: z.RefinementCtx) => {
  if (Boolean(env.TEMPORAL_TLS_CERT) !== Boolean(env.TEMPORAL_TLS_KEY))
    ctx.addIssue({
      code: 'custom',
      path: [env.TEMPORAL_TLS_CERT ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT'],
      message: 'mTLS needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY',
    });
};

/**
 * Cross-field checks run even when a field failed (`when`), so one error still lists everything;
 * they only look at presence and equality, which holds for raw values too.
 */
const always = { when: () => true };

export const TemporalConnectionEnv = z.object(temporalFields).superRefine(certAndKeyTogether, always);
export type TemporalConnectionEnv = z.infer<typeof TemporalConnectionEnv>;

export interface TemporalTls {
  serverNameOverride?: string;
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
}

/**
 * The `tls` option of Connection.connect and NativeConnection.connect (they take the same shape):
 * undefined for plain gRPC.
 */
export function temporalTls(env: TemporalConnectionEnv): TemporalTls | undefined {
  const { TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key } = env;
  if (!env.TEMPORAL_TLS && !ca && !cert && !env.TEMPORAL_TLS_SERVER_NAME) return undefined;
  return {
    ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
    ...(ca ? { serverRootCACertificate: fs.readFileSync(ca) } : {}),
    ...(cert && key ? { clientCertPair: { crt: fs.readFileSync(cert), key: fs.readFileSync(key) } } : {}),
  };
}

/**
 * Where the Git host's post-receive hook notifies the platform, and the file holding the secret it
 * signs with (at least 32 characters): worker configuration, never workflow input, so the secret
 * never enters history. Without both, repositories are made without the hook's configuration.
 */
const gitHookFields = {
  QM_GIT_HOOK_URL: optional(z.string().min(1)),
  QM_GIT_HOOK_SECRET_FILE: optional(readableFile),
};
export const GitHookEnv = z.object(gitHookFields);
export type GitHookEnv = z.infer<typeof GitHookEnv>;

/** The Git activities' hook configuration, or undefined without both variables. */
export function gitHookConfig(env: GitHookEnv): { url: string; secret: string } | undefined {
  const { QM_GIT_HOOK_URL: url, QM_GIT_HOOK_SECRET_FILE: file } = env;
  if (!url || !file) return undefined;
  return { url, secret: fs.readFileSync(file, 'utf8').trim() };
}

/** The worker (workers/main.ts). */
export const WorkerEnv = z
  .object({
    ...temporalFields,
    QM_TASK_QUEUE,
    QM_INVENTORY: z
      .string({ error: 'required: path of the fleet inventory (JSON or YAML)' })
      .pipe(readableFile),
    QM_SSH_KEY: optional(readableFile),
    SSH_AUTH_SOCK: optional(z.string().min(1)),
    /** Payload encryption keys (client/codec.ts); unset = plain payloads, with a warning. */
    QM_CODEC_KEY: optional(CodecKeys),
    ...gitHookFields,
    /** A prebuilt workflow bundle (`npm run build` makes dist/workflow-bundle.js). */
    QM_WORKFLOW_BUNDLE: optional(readableFile),
    QM_LOG_LEVEL: z.preprocess(
      (v) => (typeof v === 'string' ? v.toUpperCase() : v),
      LogLevel.default('INFO'),
    ),
    /**
     * /metrics and /healthz. Unset: no endpoint (a dev worker grabs no fixed port); the image sets
     * 9464 on 0.0.0.0.
     */
    QM_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    QM_METRICS_PORT: optional(
      z.coerce
        .number({ error: 'must be a port number (1-65535)' })
        .int('must be a port number (1-65535)')
        .min(1, 'must be a port number (1-65535)')
        .max(65535, 'must be a port number (1-65535)'),
    ),
    /** The SDK's own Prometheus exporter, on loopback only: /metrics re-serves it. */
    QM_SDK_METRICS_PORT: port(9465),
    /** How often the fleet-wide gauges (backup age, drained hosts) are refreshed. */
    QM_METRICS_REFRESH_SECONDS: seconds(60),
    /** On SIGTERM: how long in-flight activities may run on before they are cancelled. */
    QM_SHUTDOWN_GRACE_SECONDS: seconds(120),
  })
  .superRefine(certAndKeyTogether, always)
  .superRefine((env, ctx) => {
    if (!env.QM_SSH_KEY && !env.SSH_AUTH_SOCK)
      ctx.addIssue({
        code: 'custom',
        path: ['QM_SSH_KEY'],
        message: 'set QM_SSH_KEY (a private key file) or SSH_AUTH_SOCK (an ssh-agent)',
      });
    if (env.QM_METRICS_PORT !== undefined && env.QM_METRICS_PORT === env.QM_SDK_METRICS_PORT)
      ctx.addIssue({
        code: 'custom',
        path: ['QM_SDK_METRICS_PORT'],
        message: 'must differ from QM_METRICS_PORT',
      });
  }, always);
export type WorkerEnv = z.infer<typeof WorkerEnv>;

/** The one-shot Temporal set-up (workers/setupTemporal.ts): namespace and search attributes. */
export const SetupEnv = z
  .object({
    ...temporalFields,
    /** Days a closed workflow's history is kept (and so visible in the Web UI). */
    TEMPORAL_RETENTION_DAYS: z.coerce
      .number({ error: 'must be a whole number of days' })
      .int('must be a whole number of days')
      .min(1, 'must be at least 1 day')
      .default(30),
  })
  .superRefine(certAndKeyTogether, always);
export type SetupEnv = z.infer<typeof SetupEnv>;

/**
 * `QM_API_SECRETS`: the shared secrets requests are signed with, comma-separated: one, or two
 * while a secret rotates. Each at least 32 characters (e.g. `openssl rand -hex 32`).
 */
export const ApiSecrets = z
  .string({ error: 'QM_API_SECRETS is required (the shared signing secrets, comma-separated)' })
  .transform((s) => s.split(',').map((x) => x.trim()))
  .pipe(
    z
      .array(z.string().min(32, 'each secret must be at least 32 characters'))
      .min(1)
      .max(2, 'at most two secrets at once (the current one and the one being rotated out)')
      .refine((a) => new Set(a).size === a.length, 'the secrets must differ'),
  );

/** The billing API (api/main.ts). */
export const ApiEnv = TemporalEnv.extend({
  QM_API_SECRETS: ApiSecrets,
  QM_API_HOST: z.string().min(1).default('127.0.0.1'),
  QM_API_PORT: z.coerce.number().int().min(0).max(65535).default(8480),
  /** The worker's payload key(s): the API reads and writes the same encrypted payloads. */
  QM_CODEC_KEY: z
    .string({ error: 'QM_CODEC_KEY is required (the payload encryption key, base64)' })
    .min(1)
    .pipe(CodecKeys),
  /** The Git hook's signing secrets, comma-separated (one, or two while rotating): serves POST /hooks/git. */
  QM_GIT_HOOK_SECRETS: z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(z.string().min(32, 'each Git hook secret must be at least 32 characters')).min(1).max(2))
    .optional(),
});
export type ApiEnv = z.infer<typeof ApiEnv>;

/**
 * `qm` (cli/qm.ts): Temporal, the worker's payload key(s) (unset: plain payloads), and who runs it
 * (QM_USER, recorded as TriggeredBy `qm:<user>`; unset: the OS user).
 */
export const QmEnv = TemporalEnv.extend({
  QM_CODEC_KEY: optional(CodecKeys),
  QM_USER: optional(
    z
      .string()
      .max(60, 'at most 60 characters')
      .regex(/^[A-Za-z0-9._@-]+$/, 'letters, digits, ".", "_", "@" and "-"'),
  ),
});
export type QmEnv = z.infer<typeof QmEnv>;

/** The codec server (workers/codecServer.ts): the Web UI's decryption of payloads. */
export const CodecServerEnv = z.object({
  QM_CODEC_KEY: z.string({ error: 'required: the payload encryption key(s), base64' }).pipe(CodecKeys),
  QM_CODEC_TOKEN: z
    .string({ error: 'required: the codec server token (at least 32 characters)' })
    .min(32, 'the codec server token must be at least 32 characters'),
  QM_CODEC_HOST: z.string().min(1).default('127.0.0.1'),
  QM_CODEC_PORT: port(8481),
  QM_CODEC_UI_ORIGINS: z.string().min(1).default('http://localhost:8233,http://127.0.0.1:8233'),
});
export type CodecServerEnv = z.infer<typeof CodecServerEnv>;

/**
 * Parse the environment or throw one error naming every bad variable, one per line (never their
 * values).
 */
export function loadEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv = process.env): z.output<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success)
    throw new Error(
      `bad configuration:\n${parsed.error.issues.map((i) => `  ${i.path.map(String).join('.')}: ${i.message}`).join('\n')}`,
    );
  return parsed.data;
}

/**
 * `npm start` (dev/platform.ts): the whole platform on one machine. Every port and name can be
 * moved, so that several can run at once (a test starts its own beside a developer's).
 */
export const PlatformEnv = z
  .object({
    /** Temporal's SQLite file, the secrets, the demo fleet: default `data/` in the project. */
    QM_DATA_DIR: optional(z.string().min(1)),
    /** The demo fleet's /24: its hosts are .11-.13, this machine is .1 on its bridge. */
    QM_DEMO_SUBNET: z
      .string()
      .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){2}$/, 'three octets, e.g. 10.77.100')
      .default('10.77.100'),
    /** The demo fleet's network namespaces, links and cgroups are named `<prefix>-…`. */
    QM_DEMO_PREFIX: z
      .string()
      .regex(/^[a-z][a-z0-9]{0,9}$/, 'lowercase letters and digits, at most 10, a letter first')
      .default('qmdemo'),
    /** Leave the demo fleet up when the platform stops. */
    QM_KEEP_FLEET: flag,
    QM_TEMPORAL_PORT: port(7233),
    QM_UI_PORT: port(8233),
    /** The Web UI has no login and can start, signal and terminate workflows: loopback unless asked. */
    QM_UI_HOST: z.string().min(1).default('127.0.0.1'),
    QM_API_HOST: z.string().min(1).default('127.0.0.1'),
    QM_API_PORT: port(8480),
    QM_CODEC_PORT: port(8481),
    QM_TASK_QUEUE,
    /** A real fleet instead of the demo one (with QM_SSH_KEY or SSH_AUTH_SOCK). */
    QM_INVENTORY: optional(readableFile),
    QM_SSH_KEY: optional(readableFile),
    SSH_AUTH_SOCK: optional(z.string().min(1)),
    /** Unset: made once in the data directory (codec.key, codec.token, api.secret, git-hook.secret). */
    QM_CODEC_KEY: optional(z.string().min(1)),
    QM_CODEC_TOKEN: optional(z.string().min(32, 'the codec server token must be at least 32 characters')),
    QM_API_SECRETS: optional(z.string().min(1)),
    ...gitHookFields,
  })
  .superRefine((env, ctx) => {
    if (env.QM_INVENTORY && !env.QM_SSH_KEY && !env.SSH_AUTH_SOCK)
      ctx.addIssue({
        code: 'custom',
        path: ['QM_SSH_KEY'],
        message: 'a real fleet (QM_INVENTORY) needs QM_SSH_KEY or SSH_AUTH_SOCK',
      });
    if (Boolean(env.QM_GIT_HOOK_URL) !== Boolean(env.QM_GIT_HOOK_SECRET_FILE))
      ctx.addIssue({
        code: 'custom',
        path: [env.QM_GIT_HOOK_URL ? 'QM_GIT_HOOK_SECRET_FILE' : 'QM_GIT_HOOK_URL'],
        message: 'the Git hook needs both QM_GIT_HOOK_URL and QM_GIT_HOOK_SECRET_FILE',
      });
  }, always);
export type PlatformEnv = z.infer<typeof PlatformEnv>;
