import { z } from 'zod';
import { hostName } from '../../schema/common';
import { HostRole } from '../../schema/inventory';

/**
 * The input of patchRoll: one JSON object, pasted into the Web UI or sent by a Schedule. Pure (no
 * workflow APIs), so the unit tests and the API share it.
 */

/** A count (`2`) or a share of the selected hosts (`"25%"`). */
const countOrPercent = (what: string, min: number) =>
  z.union(
    [
      z
        .number()
        .int(`${what} must be a whole number`)
        .min(min, `${what} must be at least ${min}`)
        .max(10_000),
      z
        .string()
        .regex(/^\d{1,3}(\.\d+)?%$/, `${what} must be a number or a percentage like "25%"`)
        .refine(
          (s) => {
            const p = Number(s.slice(0, -1));
            return p <= 100 && (min === 0 || p > 0);
          },
          `${what} must be a percentage ${min === 0 ? 'from 0%' : 'above 0%'} to 100%`,
        ),
    ],
    { error: `${what} must be a number or a percentage like "25%"` },
  );

/** An argument vector: each element reaches the remote program as exactly one argument. */
const Argv = z
  .array(
    z
      .string()
      .max(4096)
      .refine((s) => !s.includes('\0'), 'an argument cannot contain a NUL byte'),
  )
  .min(1, 'a command needs at least its program')
  .max(256)
  .refine((a) => a.length === 0 || a[0] !== '', 'the program cannot be empty');

export const DEFAULT_PATCH_COMMAND = ['sh', '-c', 'apt-get update && apt-get -y upgrade'];
export const DEFAULT_REBOOT_CHECK = ['test', '-e', '/run/reboot-required'];

export const HostSelector = z
  .strictObject({
    /** These hosts (each must be in the inventory). */
    names: z.array(hostName).max(1000).optional(),
    /** Hosts with at least one of these roles. */
    roles: z.array(HostRole).min(1).max(6).optional(),
    /** Hosts with every one of these labels. */
    labels: z.record(z.string(), z.string()).optional(),
  })
  .refine((s) => s.names !== undefined || s.roles !== undefined || s.labels !== undefined, {
    message: 'say which hosts: names, roles or labels (a roll over the whole fleet must be asked for)',
  });
export type HostSelector = z.infer<typeof HostSelector>;

export const PatchRollInput = z
  .strictObject({
    /** Which hosts: every given criterion must match (names AND roles AND labels). */
    hosts: HostSelector,
    /** Hosts patched at once: a count or a share of the selected hosts (rounded up). */
    batchSize: countOrPercent('batchSize', 1).default(1),
    /** Failed hosts the roll tolerates before it stops: a count or a share (rounded down). */
    errorBudget: countOrPercent('errorBudget', 0).default(0),
    /** No host starts its patch after `notAfter`; at the cutoff, stop at once or let the batch finish. */
    window: z
      .strictObject({
        notAfter: z.iso.datetime({ offset: true, error: 'window.notAfter must be an ISO time with a zone' }),
        atCutoff: z.enum(['stop', 'finish-batch']).default('stop'),
      })
      .optional(),
    /** First a batch of one host, then wait for ops' `approve` (or `canaryWaitSeconds`, if given). */
    canary: z.boolean().default(true),
    canaryWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .optional(),
    /**
     * After a host is taken out, how long to wait for requests still in flight (nginx workers
     * finishing what they took before the change) before the patch starts anyway.
     */
    drainTimeoutSeconds: z.number().int().min(0).max(3600).default(60),
    /** The patch, as an argument vector (run under a per-roll guard: once per host per roll). */
    patchCommand: Argv.default(DEFAULT_PATCH_COMMAND),
    patchTimeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(6 * 3600)
      .default(1800),
    /** 'if-required': when `rebootCheck` exits 0 after the patch. */
    reboot: z.enum(['if-required', 'always', 'never']).default('if-required'),
    rebootCheck: Argv.default(DEFAULT_REBOOT_CHECK),
    /** How long a rebooting host may take to answer SSH and Docker again. */
    rebootTimeoutSeconds: z.number().int().min(10).max(3600).default(600),
    /** Who asked: `ops:<name>`, `schedule` (a search attribute). */
    triggeredBy: z.string().max(100).optional(),
  })
  .refine((i) => i.canary || i.canaryWaitSeconds === undefined, {
    message: 'canaryWaitSeconds needs canary: true',
    path: ['canaryWaitSeconds'],
  });
export type PatchRollInput = z.input<typeof PatchRollInput>;
export type PatchRollConfig = z.output<typeof PatchRollInput>;

/** `2` → 2; `"25%"` of 10 → ceil (batch) or floor (budget). */
export function resolveCount(value: number | string, total: number, round: 'up' | 'down'): number {
  if (typeof value === 'number') return value;
  const exact = (Number(value.slice(0, -1)) / 100) * total;
  // 1e-9: 0.1 * 30 is 3.0000000000000004 in floating point, which must not round up to 4
  return round === 'up' ? Math.ceil(exact - 1e-9) : Math.floor(exact + 1e-9);
}
