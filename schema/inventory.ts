import { z } from 'zod';
import { Argv, hostName, parseOrThrow } from './common';

/** What a host is for. Placement picks hosts by role; a host may have several. */
export const HostRole = z.enum(['app', 'db', 'proxy', 'cache', 'storage', 'git']);
export type HostRole = z.infer<typeof HostRole>;

/** A pinned host key, in OpenSSH's `ssh-keygen -lf` form: SHA256: then unpadded base64. */
export const HostKeyFingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an OpenSSH SHA256 fingerprint (SHA256:<43 base64 chars>)');

const absolutePath = z.string().regex(/^\/[^\0]*$/, 'must be an absolute path');

const HostDefaults = z.strictObject({
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*$/, 'must be a Unix user name')
    .default('root'),
  port: z.number().int().min(1).max(65535).default(22),
  dockerSocket: absolutePath.default('/run/docker.sock'),
  /** How a patch roll patches these hosts when its input names no command (protocol/patchRoll.ts). */
  patchCommand: Argv.optional(),
});

export const InventoryHost = z.strictObject({
  name: hostName,
  address: z.union([z.ipv4(), z.ipv6(), z.hostname()]),
  port: z.number().int().min(1).max(65535).optional(),
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*$/, 'must be a Unix user name')
    .optional(),
  roles: z.array(HostRole).min(1, 'a host needs at least one role'),
  labels: z.record(z.string().regex(/^[a-z0-9_.-]+$/, 'label keys are lowercase'), z.string()).default({}),
  hostKeys: z.array(HostKeyFingerprint).min(1, 'pin at least one host key'),
  dockerSocket: absolutePath.optional(),
  patchCommand: Argv.optional(),
});

export const Inventory = z
  .strictObject({
    defaults: HostDefaults.default({ user: 'root', port: 22, dockerSocket: '/run/docker.sock' }),
    hosts: z.array(InventoryHost).min(1, 'the fleet needs at least one host'),
  })
  .superRefine((inv, ctx) => {
    const seen = new Set<string>();
    inv.hosts.forEach((h, i) => {
      if (seen.has(h.name))
        ctx.addIssue({
          code: 'custom',
          path: ['hosts', i, 'name'],
          message: `duplicate host name ${h.name}`,
        });
      seen.add(h.name);
    });
  });

/** A host with every default applied: what the SSH pool and the activities work with. */
export interface Host {
  name: string;
  address: string;
  port: number;
  user: string;
  roles: HostRole[];
  labels: Record<string, string>;
  hostKeys: string[];
  dockerSocket: string;
  /** The patch roll's default patch for this host; unset: DEFAULT_PATCH_COMMAND. */
  patchCommand?: string[];
}

export function parseInventory(input: unknown): Host[] {
  const inv = parseOrThrow(Inventory, input, 'inventory');
  return inv.hosts.map((h) => {
    const patchCommand = h.patchCommand ?? inv.defaults.patchCommand;
    return {
      name: h.name,
      address: h.address,
      port: h.port ?? inv.defaults.port,
      user: h.user ?? inv.defaults.user,
      roles: h.roles,
      labels: h.labels,
      hostKeys: h.hostKeys,
      dockerSocket: h.dockerSocket ?? inv.defaults.dockerSocket,
      ...(patchCommand ? { patchCommand } : {}),
    };
  });
}
