import { describeIssues } from '../../schema/common';
import { ContainerSpec, type ContainerSpecInput } from '../../schema/container';
import type { ContainerProfile, Profile } from '../../schema/profile';
import {
  isCommitRelease,
  RELEASE_MOUNT,
  releaseDir,
  STANDBY_PORT_OFFSET,
  type AppSlot,
} from '../../schema/release';
import { siteNames, type Placement, type SiteSpec } from '../../schema/site';
import { CACHE_PORT_OFFSET } from './placement';

/**
 * A site's containers from its profile: pure, so what a provision creates is unit-tested and
 * nothing here can reach a host. The rendered spec may hold the DB password (an env value): it is
 * only ever built inside the activity that creates the container, and no error here quotes a value.
 */

export const SITE_ROLES = ['app', 'cache', 'cron'] as const;
export type SiteRole = (typeof SITE_ROLES)[number];

export const DB_PORT = 3306;

export const LABELS = {
  site: 'qm.site',
  role: 'qm.role',
  release: 'qm.release',
  slot: 'qm.slot',
  customer: 'qm.customer',
} as const;

/** What the renderer cannot know by itself: addresses from the inventory, the password from the DB host. */
export interface ResolvedValues {
  /** The DB host's address (inventory). */
  dbHostAddress: string;
  /** The cache host's address (inventory). */
  cacheHostAddress: string;
  /** Needed only when the role's template uses {{db.password}} (see usesPlaceholder). */
  dbPassword?: string;
}

/** A template error: which field, which placeholder; never the value. */
export class RenderError extends Error {
  override readonly name = 'RenderError';
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

/** The profile of one role, or a RenderError if the profile has none. */
export function roleProfile(profile: Profile, role: SiteRole): ContainerProfile {
  const p = profile.containers[role];
  if (!p) throw new RenderError(`profile ${profile.name} has no ${role} container`, `containers.${role}`);
  return p;
}

/** The host port the site's cache publishes (its app port plus CACHE_PORT_OFFSET). */
export function cachePort(placement: Placement): number {
  return placement.port + CACHE_PORT_OFFSET;
}

/** Whether the role's env or cmd uses the placeholder (so a secret is fetched only when needed). */
export function usesPlaceholder(profile: Profile, role: SiteRole, name: string): boolean {
  const p = profile.containers[role];
  if (!p) return false;
  const texts = [...Object.values(p.env), ...(p.cmd ?? [])];
  return texts.some((t) => [...t.matchAll(PLACEHOLDER)].some((m) => m[1]!.trim() === name));
}

/**
 * Fill `{{name}}` placeholders in one pass (a value is never scanned again, so a value holding
 * braces stays as it is). An unknown placeholder, or one with no value here, is a RenderError.
 */
export function substitute(
  text: string,
  values: Readonly<Record<string, string | undefined>>,
  field: string,
) {
  return text.replace(PLACEHOLDER, (_, raw: string) => {
    const name = raw.trim();
    if (!Object.prototype.hasOwnProperty.call(values, name))
      throw new RenderError(`${field}: unknown placeholder {{${name}}}`, field);
    const value = values[name];
    if (value === undefined) throw new RenderError(`${field}: {{${name}}} has no value here`, field);
    return value;
  });
}

export interface RenderInput {
  profile: Profile;
  role: SiteRole;
  site: SiteSpec;
  placement: Placement;
  release: string;
  values: ResolvedValues;
  /** The app container's slot (default live); see AppSlot. */
  slot?: AppSlot;
}

/**
 * The container of `role` for the site:
 * - name `site-<id>-<role>`, on the network `site-<id>`, labelled qm.site, qm.role, qm.release,
 *   qm.customer;
 * - app publishes its profile port on placement.port, cache its port on placement.port + 10000
 *   (on every address of the host), cron nothing;
 * - the site's shared files (/srv/qm/sites/<id>/files, an sshfs mount) at the profile's filesMount;
 * - for a release that is a commit, its code (/srv/qm/releases/<id>/<commit>) read-only at
 *   /srv/release (app and cron);
 * - the standby app slot: name site-<id>-app-standby, port placement.port + 20000, label qm.slot;
 * - image, cmd, env, healthcheck and memory from the profile, with the placeholders filled.
 */
export function renderSiteContainer(input: RenderInput): ContainerSpec {
  const { profile, role, site, placement, release, values } = input;
  const p = roleProfile(profile, role);
  const standby = role === 'app' && input.slot === 'standby';
  const names = siteNames(site.siteId);
  const cache = profile.containers.cache;
  const vars: Record<string, string | undefined> = {
    'site.id': site.siteId,
    'site.domain': site.domains[0],
    'db.host': values.dbHostAddress,
    'db.port': String(DB_PORT),
    'db.name': names.database,
    'db.user': names.dbUser,
    'db.password': values.dbPassword,
    'cache.host': cache ? values.cacheHostAddress : undefined,
    'cache.port': cache?.port !== undefined ? String(cachePort(placement)) : undefined,
    release,
  };
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.env)) env[k] = substitute(v, vars, `containers.${role}.env.${k}`);
  const cmd = p.cmd?.map((a, i) => substitute(a, vars, `containers.${role}.cmd.${i}`));

  const ports: ContainerSpecInput['ports'] = [];
  if (role === 'app')
    ports.push({
      containerPort: p.port!,
      hostPort: placement.port + (standby ? STANDBY_PORT_OFFSET : 0),
    });
  if (role === 'cache' && p.port !== undefined)
    ports.push({ containerPort: p.port, hostPort: cachePort(placement) });

  const spec: ContainerSpecInput = {
    name: standby ? `${names.container(role)}-standby` : names.container(role),
    image: p.image,
    cmd,
    env,
    labels: {
      [LABELS.site]: site.siteId,
      [LABELS.role]: role,
      [LABELS.release]: release,
      [LABELS.customer]: site.customerId,
      ...(standby ? { [LABELS.slot]: 'standby' } : {}),
    },
    ports,
    mounts: [
      ...(p.filesMount ? [{ type: 'bind' as const, source: names.mountDir, target: p.filesMount }] : []),
      ...(role !== 'cache' && isCommitRelease(release)
        ? [
            {
              type: 'bind' as const,
              source: releaseDir(site.siteId, release),
              target: RELEASE_MOUNT,
              readOnly: true,
            },
          ]
        : []),
    ],
    network: names.network,
    memoryMb: p.memoryMb,
    healthcheck: p.healthcheck,
  };
  const parsed = ContainerSpec.safeParse(spec);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
    throw new RenderError(
      `the ${role} container of ${site.siteId} is not a valid container: ${describeIssues(parsed.error)}`,
      field,
    );
  }
  return parsed.data;
}
