import { z } from 'zod';
import { slug } from './common';
import { DomainName, SiteId } from './route';

export { SiteId };

/** What the customer pays for: picks resources and (later) backup retention. */
export const Plan = z.enum(['starter', 'business', 'enterprise']);
export type Plan = z.infer<typeof Plan>;

/**
 * A repository on the platform's Git host, by path (`customers/acme.git`). No `..`, no absolute
 * paths, no URL: the platform decides where its Git server is.
 */
export const GitRepo = z
  .string()
  .max(200)
  .regex(
    /^[a-z0-9][a-z0-9_-]*(?:\/[a-z0-9][a-z0-9_.-]*)*\.git$/,
    'repo must be a path like customers/acme.git (lowercase letters, digits, - _ . and /, ending in .git)',
  )
  .refine(
    (r) => !r.split('/').some((c) => c === '..' || c.startsWith('.')),
    'repo must not contain .. or hidden parts',
  );

/** A branch name: a safe subset of git's ref-name rules. */
export const GitBranch = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'branch must be letters, digits, . _ - and /')
  .refine((b) => !b.includes('..') && !b.includes('//') && !b.endsWith('/') && !b.endsWith('.lock'), {
    message: 'branch must not contain .. or //, nor end with / or .lock',
  });

/** Everything that defines a site; the input of provisionSite. */
export const SiteSpec = z.strictObject({
  siteId: SiteId,
  customerId: slug('customer id', 64),
  plan: Plan,
  /** A profile under profiles/ (which containers, images, env, hooks). */
  profile: slug('profile', 64),
  domains: z.array(DomainName).min(1, 'a site needs at least one domain').max(20),
  git: z.strictObject({ repo: GitRepo, branch: GitBranch.default('main') }),
  /** How many app servers (hosts) run the site's app container. */
  appServers: z.number().int().min(1).max(8).default(2),
  resources: z
    .strictObject({ memoryMb: z.number().int().min(16).max(65536).default(256) })
    .default({ memoryMb: 256 }),
});
export type SiteSpecInput = z.input<typeof SiteSpec>;
export type SiteSpec = z.output<typeof SiteSpec>;

/** Where a site runs, chosen once at provision time by placeSite. */
export const Placement = z.strictObject({
  appHosts: z.array(z.string()).min(1),
  dbHost: z.string(),
  storageHost: z.string(),
  proxyHosts: z.array(z.string()).min(1),
  cacheHost: z.string(),
  /** The host port the site's app containers publish on every app host. */
  port: z.number().int().min(1024).max(65535),
});
export type Placement = z.infer<typeof Placement>;

export const SiteState = z.enum([
  'provisioning',
  'active',
  'suspended',
  'deprovisioning',
  'deleted',
  'failed',
]);
export type SiteState = z.infer<typeof SiteState>;

/**
 * Why a site is `failed` and what is still out of line: set by the operation that failed it (a
 * deploy or rollback whose switch back did not finish, a provision whose undo did not), updated by
 * each repair that could not put everything back, cleared (null) by the repair that did.
 */
export interface SiteFailure {
  /** The operation that failed the site: deploy, rollback, provision (or repair, for what it found). */
  operation: string;
  workflowId: string;
  /** When (ISO). */
  at: string;
  /** The step that failed, and the host it failed on when one did. */
  step: string;
  host?: string;
  /** The root cause, as the operation's failure says it. */
  cause: string;
  /** What is still not as the record says, one line each (`host3: unreachable`, …). */
  outOfLine: string[];
  /** The state the site returns to once repaired (active or suspended; new or deleted for a provision). */
  stateBefore: SiteState | 'new';
  /** A snapshot the database must go back to before the site serves again (a deploy's, after its hooks ran). */
  databaseSnapshot?: string;
}

/** What the platform knows, durably, about a site (held by its site workflow). */
export interface SiteRecord {
  siteId: string;
  customerId?: string;
  state: SiteState | 'new';
  spec?: SiteSpec;
  placement?: Placement;
  release?: string;
  /** Workflow id of the last operation that changed the record. */
  lastOperation?: string;
  /** The newest backup that was verified (restored into scratch and matched): set by backupSite. */
  lastGoodBackup?: { backupId: string; at: string };
  /** Set while the site is `failed` (null once repaired: a patch's undefined would not clear it). */
  failure?: SiteFailure | null;
}

/** Deterministic names of everything a site owns: the same site always gets the same names. */
export function siteNames(siteId: string) {
  // MariaDB names: hyphens are legal inside backquotes, but underscores spare every tool the quoting
  const db = `site_${siteId.replace(/-/g, '_')}`;
  return {
    database: db,
    dbUser: db.slice(0, 80),
    network: `site-${siteId}`,
    container: (role: string, index = 0) =>
      index === 0 ? `site-${siteId}-${role}` : `site-${siteId}-${role}-${index}`,
    filesDir: `/srv/qm/files/${siteId}`,
    mountDir: `/srv/qm/sites/${siteId}/files`,
  };
}
