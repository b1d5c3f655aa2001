import { z } from 'zod';

/**
 * Releases: what a site's app servers run. A release is a Git commit of the site's repository
 * (or `initial`, what provisionSite starts a site on), its code in a folder on each app host.
 * Shared by the Git and release activities, the deploy workflows and the Git webhook.
 */

/** A full commit id (SHA-1): 40 lowercase hex digits. Abbreviations are resolved by resolveGitRef. */
export const CommitId = z.string().regex(/^[0-9a-f]{40}$/, 'commit must be 40 lowercase hex digits');
export type CommitId = z.infer<typeof CommitId>;

/** A ref to resolve: a branch, a tag, `refs/...`, or a (possibly abbreviated) commit id; never an option. */
export const GitRef = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'ref must be letters, digits, . _ - and /')
  .refine((r) => !r.includes('..') && !r.includes('//') && !r.endsWith('/') && !r.endsWith('.lock'), {
    message: 'ref must not contain .. or //, nor end with / or .lock',
  });

export const isCommitRelease = (release: string) => /^[0-9a-f]{40}$/.test(release);

/**
 * Zero-downtime switches: besides the `live` app container (site-<id>-app, on placement.port), a
 * `standby` one (site-<id>-app-standby, on placement.port + STANDBY_PORT_OFFSET) serves while the
 * live one is replaced, then is removed. Between operations only `live` runs, so every other
 * workflow keeps routing to placement.port.
 */
export type AppSlot = 'live' | 'standby';
export const STANDBY_PORT_OFFSET = 20000;

/** Where a commit release's code is on each app host, and where its containers see it (read-only). */
export const RELEASES_ROOT = '/srv/qm/releases';
export const RELEASE_MOUNT = '/srv/release';
export const releaseDir = (siteId: string, commit: string) => `${RELEASES_ROOT}/${siteId}/${commit}`;
