import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT, main } from '../../cli/qm';
import { approveSignal } from '../../protocol/patchRoll';
import { TriggeredBy } from '../../protocol/searchAttributes';
import { openBed, type Bed } from '../support/bed';
import { eventually } from '../support/eventually';
import { testSite } from '../support/site';
import { startApi, uniqueSiteId, withApiWorker, type Api } from './harness';

/**
 * `qm` against the real worker and bed, run in-process as the bin runs it (cli/qm.cjs calls the
 * same main()): it provisions from the docs' `{site, triggeredBy}` input and records who ran it
 * (`qm:<QM_USER>`, not `ui`), and `qm op` reads every kind of run ops start: a fleet check, a night
 * of backups and a patch roll (its status, canary and hosts while it runs, how it ended after).
 */

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

async function qm(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const env = {
    TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS,
    QM_TASK_QUEUE: api.taskQueue,
    QM_CODEC_KEY: api.codecKey,
    QM_USER: 'jane',
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: () => '' });
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

const start = (workflowType: string, workflowId: string, input: unknown) =>
  api.client.workflow.start(workflowType, { taskQueue: api.taskQueue, workflowId, args: [input] });

test('qm provisions from {site, triggeredBy}, records qm:<user>, and qm op reads fleet checks, nights and patch rolls', async () => {
  const site = testSite({ siteId: uniqueSiteId('qm'), appServers: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-test-'));
  const file = path.join(dir, 'spec.json');
  fs.writeFileSync(file, JSON.stringify({ site, triggeredBy: 'ops:jane' }));
  const tag = randomBytes(3).toString('hex');

  await withApiWorker(bed, api, async () => {
    // provision, followed to the end; the operation says who started it
    const provision = await qm('provision', file, '--key', 'k1');
    expect(provision).toMatchObject({ code: EXIT.ok });
    expect(provision.out).toContain(`started provision:${site.siteId}:k1`);
    expect(provision.out).toMatch(/COMPLETED .*"state":"active"/);
    const d = await api.client.workflow.getHandle(`provision:${site.siteId}:k1`).describe();
    expect(d.typedSearchAttributes.get(TriggeredBy)).toBe('qm:jane');
    try {
      // a fleet check
      await start('checkFleet', `check-${tag}`, {});
      const check = await qm('op', `check-${tag}`, '--follow');
      expect(check.code).toBe(EXIT.ok);
      expect(check.out).toContain(`check-${tag}  `);
      expect(check.out).toContain('COMPLETED  healthy host1, host2, host3; failed -');

      // a night of backups (this site only, at once)
      await start('nightlyBackups', `nightly-${tag}`, { windowMinutes: 0, sites: [site.siteId] });
      const night = await qm('op', `nightly-${tag}`, '--follow');
      expect(night.code).toBe(EXIT.ok);
      expect(night.out).toMatch(
        new RegExp(`COMPLETED  night \\S+: 1 site\\(s\\); succeeded ${site.siteId};`),
      );

      // a patch roll (a harmless patch): the canary done, waiting for approve, then to the end
      const rollId = `patch-${tag}`;
      await start('patchRoll', rollId, {
        hosts: { names: ['host2', 'host3'] },
        canary: true,
        patchCommand: ['true'],
        reboot: 'never',
        drainTimeoutSeconds: 0,
        triggeredBy: 'test',
      });
      const waiting = await eventually(
        async () => {
          const r = await qm('op', rollId);
          return r.out.includes('status waiting-for-approval') ? r : undefined;
        },
        { what: 'the canary wait, as qm op shows it', timeoutMs: 90_000, intervalMs: 500 },
      );
      expect(waiting.code).toBe(EXIT.ok);
      expect(waiting.out).toContain(`${rollId}  RUNNING  (patch roll, started `);
      expect(waiting.out).toMatch(/canary host2: waiting for approve/);
      expect(waiting.out).toMatch(/host2: done \(batch 1\)/);
      expect(waiting.out).toMatch(/host3: pending \(batch 2\)/);
      await api.client.workflow.getHandle(rollId).signal(approveSignal);
      const ended = await qm('op', rollId, '--follow');
      expect(ended.code).toBe(EXIT.ok);
      expect(ended.out).toContain(
        'COMPLETED  roll completed: done host2, host3; failed -; skipped -; held back -; not started -',
      );

      // not a workflow at all
      expect(await qm('op', `no-such-${tag}`)).toMatchObject({ code: EXIT.notFound });
    } finally {
      const gone = await qm('deprovision', site.siteId, '--skip-final-backup', '--key', 'k2');
      expect(gone.code).toBe(EXIT.ok);
    }
  });
}, 240_000);
