import { z } from 'zod';
import { absolutePath, ImageRef } from './container';

/**
 * A site profile: the data that says what a kind of site runs (profiles/*.yaml). Values may use
 * placeholders filled in at provision time: {{site.id}}, {{site.domain}}, {{db.host}}, {{db.port}},
 * {{db.name}}, {{db.user}}, {{db.password}}, {{cache.host}}, {{cache.port}}, {{release}}.
 * {{db.password}} is resolved inside the activity that creates the container, so it never enters
 * workflow history.
 */

const Argv = z.array(z.string().max(4096)).min(1);
const Env = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().max(4096)).default({});

const ContainerProfile = z.strictObject({
  image: ImageRef,
  cmd: Argv.optional(),
  env: Env,
  /** The port inside the container that serves (app: HTTP for the proxy; cache: its protocol). */
  port: z.number().int().min(1).max(65535).optional(),
  /** Where the site's shared files appear in the container. */
  filesMount: absolutePath('files mount').optional(),
  healthcheck: z
    .strictObject({
      test: Argv,
      intervalMs: z.number().int().min(100).default(2000),
      timeoutMs: z.number().int().min(100).default(2000),
      retries: z.number().int().min(1).default(3),
      startPeriodMs: z.number().int().min(0).default(0),
    })
    .optional(),
  memoryMb: z.number().int().min(6).optional(),
});
export type ContainerProfile = z.output<typeof ContainerProfile>;

export const Profile = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  description: z.string().max(500).default(''),
  containers: z.strictObject({
    app: ContainerProfile.extend({ port: z.number().int().min(1).max(65535) }),
    cache: ContainerProfile.optional(),
    cron: ContainerProfile.optional(),
  }),
  hooks: z
    .strictObject({
      /** Run once per site (in one app container) after a new release is live, in order. */
      postDeploy: z.array(Argv).default([]),
    })
    .default({ postDeploy: [] }),
  health: z
    .strictObject({
      /** Fetched through the proxy with the site's first domain as Host. */
      path: z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]*$/, 'health path must be a URL path'),
      expectStatus: z.number().int().min(100).max(599).default(200),
      /** Text the body must contain, if given. */
      expectText: z.string().max(200).optional(),
    })
    .default({ path: '/', expectStatus: 200 }),
});
export type ProfileInput = z.input<typeof Profile>;
export type Profile = z.output<typeof Profile>;
