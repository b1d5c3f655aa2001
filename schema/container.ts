import { z } from 'zod';
import { slug } from './common';

/**
 * What a container should be: the input of ensureContainer. Data only; the Docker API request it
 * becomes is built in activities/docker/commands.ts, and its hash (stored on the container as the
 * label qm.spec-hash) is taken over the parsed spec, defaults applied.
 *
 * Env values may hold secrets (a database password): they travel in the API request body, never
 * on a command line, and nothing logs a spec or puts one in an error.
 */

/** A Docker object name we create (container, network, volume): a slug, so no shell or path tricks. */
export const dockerName = (what: string) => slug(what, 63);

/** Label keys reserved for the orchestrator's own bookkeeping; a spec may not set them. */
export const SPEC_HASH_LABEL = 'qm.spec-hash';

const pathComponent = /^[A-Za-z0-9._@+-]+$/;

/**
 * An absolute path with no `..`, `.`, empty or odd components: what a bind mount may name on the
 * host, and where a mount goes in the container.
 */
export const absolutePath = (what: string) =>
  z
    .string()
    .max(4096)
    .refine(
      (p) =>
        p === '/' ||
        (p.startsWith('/') &&
          p
            .slice(1)
            .split('/')
            .every((c) => c !== '.' && c !== '..' && pathComponent.test(c))),
      `${what} must be an absolute path of plain components (letters, digits, . _ @ + -; no .. or //)`,
    );

/**
 * An image reference with an explicit tag or digest (no implicit :latest, whose meaning drifts):
 * `local/busybox:1`, `registry.example.org:5000/team/php:8.3-fpm`, `repo/app@sha256:<64 hex>`.
 */
export const ImageRef = z
  .string()
  .max(255)
  .regex(
    /^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$/,
    'image must be a reference with an explicit tag or digest, e.g. local/busybox:1',
  );

const LabelKey = z
  .string()
  .max(128)
  .regex(/^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/, 'label keys are lowercase letters, digits, . _ -')
  .refine((k) => k !== SPEC_HASH_LABEL, `${SPEC_HASH_LABEL} is set by the orchestrator`);

export const Labels = z.record(LabelKey, z.string().max(1024));

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _');

/** An argument vector: each element reaches the program as one argument (exec form, no shell). */
const Argv = z
  .array(
    z
      .string()
      .max(8192)
      .refine((a) => !a.includes('\0'), 'no NUL bytes'),
  )
  .min(1);

const PortNumber = z.number().int().min(1).max(65535);

export const PortBinding = z.strictObject({
  containerPort: PortNumber,
  hostPort: PortNumber,
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  /** The host address to listen on; all of them when absent. */
  hostIp: z.ipv4().optional(),
});

export const Mount = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('bind'),
    source: absolutePath('bind source'),
    target: absolutePath('mount target'),
    readOnly: z.boolean().default(false),
  }),
  z.strictObject({
    type: z.literal('volume'),
    source: dockerName('volume name'),
    target: absolutePath('mount target'),
    readOnly: z.boolean().default(false),
  }),
]);

export const Healthcheck = z.strictObject({
  /** Run in the container without a shell (Docker's CMD form). */
  test: Argv,
  intervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
  timeoutMs: z.number().int().min(100).max(3_600_000).default(5_000),
  retries: z.number().int().min(1).max(100).default(3),
  /** Failures during this time after start do not count. */
  startPeriodMs: z.number().int().min(0).max(3_600_000).default(0),
});

export const MAX_STOP_TIMEOUT_SEC = 300;

export const RestartPolicy = z.enum(['no', 'always', 'unless-stopped', 'on-failure']);

export const ContainerSpec = z
  .strictObject({
    name: dockerName('container name'),
    image: ImageRef,
    /** Replaces the image's CMD when given. */
    cmd: Argv.optional(),
    env: z.record(EnvName, z.string().max(65536)).default({}),
    labels: Labels.default({}),
    ports: z.array(PortBinding).default([]),
    mounts: z.array(Mount).default([]),
    /** A user-defined network (ensureNetwork first); Docker's default bridge when absent. */
    network: dockerName('network name').optional(),
    restart: RestartPolicy.default('unless-stopped'),
    healthcheck: Healthcheck.optional(),
    /**
     * Run a tiny init as PID 1 that forwards signals and reaps zombies: without it a program that
     * ignores SIGTERM as PID 1 (busybox httpd does) is only stopped by the SIGKILL after the timeout.
     */
    init: z.boolean().default(true),
    memoryMb: z.number().int().min(6).max(1_048_576).optional(),
    /** How long a stop waits after SIGTERM before SIGKILL (stored on the container). */
    stopTimeoutSec: z.number().int().min(0).max(MAX_STOP_TIMEOUT_SEC).default(10),
  })
  .superRefine((spec, ctx) => {
    const seenPorts = new Set<string>();
    spec.ports.forEach((p, i) => {
      const key = `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}/${p.protocol}`;
      if (seenPorts.has(key))
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'hostPort'], message: `${key} is bound twice` });
      seenPorts.add(key);
    });
    const seenTargets = new Set<string>();
    spec.mounts.forEach((m, i) => {
      if (seenTargets.has(m.target))
        ctx.addIssue({
          code: 'custom',
          path: ['mounts', i, 'target'],
          message: `${m.target} is mounted twice`,
        });
      seenTargets.add(m.target);
    });
  });

/** What callers write (defaults may be left out). */
export type ContainerSpecInput = z.input<typeof ContainerSpec>;
/** A spec with every default applied: what is hashed and turned into an API request. */
export type ContainerSpec = z.output<typeof ContainerSpec>;
