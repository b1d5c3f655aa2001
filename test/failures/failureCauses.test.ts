import { execFile } from 'node:child_process';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { OperationResponse, OperationStarted } from '../../api/responses';
import { testbed } from '../../dev/fleet';
import type { Placement } from '../../schema/site';
import { request, startApi, uniqueSiteId, withApiWorker, type Api } from '../api/harness';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { removeGitRepoOnHost, siteLeftovers, testSite } from '../support/site';

/**
 * A failed operation says why wherever ops look: the API's view of it, `qm op`, and the workflow's
 * own failure (what the Web UI shows) each name the root cause, the step and the host, for real
 * faults on the bed: the DB host's MariaDB stopped under a backup, and an app server whose SSH
 * host key changed under a deploy. Through the API on the real worker, with encrypted payloads.
 */

const ROOT = path.resolve(__dirname, '..', '..');
let bed: Bed;
let api: Api;
beforeAll(async () => {
  bed = await openBed();
  api = await startApi(bed.env);
});
afterAll(async () => {
  await api?.close();
  await bed?.close();
});

/** `qm` (the package's bin) in its own process, with the API's Temporal, task queue and codec key. */
function qm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'cli/qm.cjs'), ...args],
      {
        cwd: '/tmp',
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS,
          QM_TASK_QUEUE: api.taskQueue,
          QM_CODEC_KEY: api.codecKey,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let keySeq = 0;
async function started(method: string, p: string, body?: unknown): Promise<string> {
  const r = await request(api, { method, path: p, body, idempotencyKey: `fail-${++keySeq}` });
  expect(r.status).toBe(202);
  return OperationStarted.parse(r.json).operationId;
}

async function ended(id: string) {
  return eventually(
    async () => {
      const view = OperationResponse.parse((await request(api, { path: `/v1/operations/${id}` })).json);
      return view.state === 'RUNNING' ? undefined : view;
    },
    { what: `operation ${id}`, timeoutMs: 180_000 },
  );
}

/** The three places a failure shows: the API's view, `qm op`'s lines, the workflow's own failure. */
async function failureEverywhere(id: string) {
  const view = await ended(id);
  expect(view.state).toBe('FAILED');
  const cli = await qm('op', id);
  expect(cli.code).toBe(1);
  const err = await api.client.workflow
    .getHandle(id)
    .result()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const workflow = (err as WorkflowFailedError).cause!;
  return { id, error: view.error!, qm: cli.stdout, workflowMessage: workflow.message };
}

test('MariaDB stopped under a backup, a changed host key under a deploy: the API, qm and the workflow name cause, step and host', async () => {
  const site = testSite({ siteId: uniqueSiteId('fail'), appServers: 1 });
  let placement: Placement | undefined;
  await withApiWorker(bed, api, async () => {
    try {
      const provision = await ended(await started('POST', '/v1/sites', { site }));
      expect(provision.state).toBe('COMPLETED');
      placement = (provision.result as { placement: Placement }).placement;
      const { dbHost } = placement;
      const appHost = placement.appHosts[0]!;

      // the DB host's MariaDB is down for the whole backup (every retry of the dump)
      testbed.stop(dbHost, 'mariadb');
      let backup: Awaited<ReturnType<typeof failureEverywhere>>;
      try {
        backup = await failureEverywhere(await started('POST', `/v1/sites/${site.siteId}/backups`));
      } finally {
        testbed.start(dbHost, 'mariadb');
      }
      const mariadb = "Can't connect to local server through socket";
      expect(backup.error).toMatchObject({
        type: 'BackupFailed',
        step: expect.stringMatching(/^on-demand backup \S+: database$/),
        host: dbHost,
        activityType: 'backupDatabase',
        rootCause: { type: 'CommandFailed', message: expect.stringContaining(mariadb) },
      });
      const step = backup.error.step!;
      for (const text of [backup.workflowMessage, backup.error.message, backup.qm]) {
        expect(text).toContain(mariadb);
        expect(text).toContain(`failed at "${step}" on ${dbHost}`);
      }
      expect(backup.qm).toContain(`step        ${step}`);
      expect(backup.qm).toContain(`host        ${dbHost}`);
      // the message is in Temporal's history only encrypted
      const history = await api.rawClient.workflow.getHandle(backup.id).fetchHistory();
      expect(JSON.stringify(history)).not.toContain(mariadb);

      // the app server's SSH host key changes: a deploy must refuse to talk to it, and say so
      testbed.rekey(appHost);
      let deploy: Awaited<ReturnType<typeof failureEverywhere>>;
      try {
        deploy = await failureEverywhere(
          await started('POST', `/v1/sites/${site.siteId}/deploy`, { commit: 'a'.repeat(40) }),
        );
      } finally {
        testbed.restoreKey(appHost);
      }
      expect(deploy.error).toMatchObject({
        type: 'DeployFailed',
        step: 'snapshot database, fetch release',
        host: appHost,
        rootCause: { type: 'HostKeyMismatch', message: expect.stringContaining('not one pinned') },
      });
      for (const text of [deploy.workflowMessage, deploy.error.message, deploy.qm]) {
        expect(text).toContain(`failed at "snapshot database, fetch release" on ${appHost}`);
        expect(text).toMatch(/host key of host\d \(\S+\) is SHA256:\S+, not one pinned in the inventory/);
      }
      expect(deploy.qm).toContain('root cause  HostKeyMismatch: host key of');
    } finally {
      const gone = await ended(await started('DELETE', `/v1/sites/${site.siteId}`));
      expect(gone.state).toBe('COMPLETED');
      await removeGitRepoOnHost(bed.fleet, site.git!.repo);
    }
  });
  expect(await siteLeftovers(bed.fleet, site.siteId)).toEqual([]);
}, 300_000);
