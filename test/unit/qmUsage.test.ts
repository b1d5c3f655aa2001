import { EXIT, main } from '../../cli/qm';

/**
 * `qm` checks every argument against the workflows' own schemas before it connects: a typo never
 * reaches Temporal (TEMPORAL_ADDRESS points at a closed port, so a command that got as far as
 * connecting would end with EXIT.unavailable instead).
 */

async function qm(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const saved = process.env.TEMPORAL_ADDRESS;
  process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
  try {
    const code = await main(argv, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      readStdin: () => '',
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    if (saved === undefined) delete process.env.TEMPORAL_ADDRESS;
    else process.env.TEMPORAL_ADDRESS = saved;
  }
}

test.each([
  [['plan', 'acme', 'gold'], /plan/],
  [['plan', 'acme'], /qm plan <siteId> <plan>/],
  [['deploy', 'acme'], /qm deploy <siteId> <ref\|commit>/],
  [['deploy', 'acme', 'main;rm -rf /'], /ref/],
  [['restore', 'acme', '../../etc'], /backupId/],
  [['rollback', 'acme', 'HEAD~1'], /release/],
  [['backup', 'acme', 'now'], /unexpected arguments: now/],
  [['suspend', 'acme', 'now'], /unexpected arguments: now/],
  [['repair', 'acme', 'now'], /unexpected arguments: now/],
  [['repair', 'acme', '--reason', 'x'.repeat(201)], /reason/],
  [['schedule', 'fleet-check', '--every', '0'], /everyMinutes/],
  [['schedule', 'hourly'], /qm schedule nightly .* \| qm schedule fleet-check/],
  [['deploy', 'acme', 'main', 'extra'], /unexpected arguments: extra/],
  [['backup', 'Acme!'], /bad site id/],
  [['frobnicate'], /unknown command frobnicate/],
])('qm %j → usage error naming what is wrong, nothing connects', async (argv, message) => {
  const r = await qm(...argv);
  expect(r.code).toBe(EXIT.usage);
  expect(r.err).toMatch(message);
});

test('a good command gets past the checks (and finds no Temporal on the closed port)', async () => {
  const r = await qm('deploy', 'acme', 'a'.repeat(40), '--reason', 'hotfix', '--no-follow');
  expect(r.code).toBe(EXIT.unavailable);
}, 60_000);
