import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parsePatchOutput, patchArgv, rollDir, scheduleRebootArgv } from '../../activities/host/commands';

/**
 * The patch guard, run through a real sh on this machine (with the roll directory moved to a temp
 * dir): once per roll, a retry during a running attempt waits for it, arguments stay arguments.
 */

const run = promisify(execFile);
let tmp: string;
beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-patch-'))));
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ROLL = '0f3c2a9e-1b2c-4d5e-8f90-123456789abc';

async function guard(command: string[]): Promise<{ stdout: string; code: number }> {
  const argv = patchArgv(ROLL, command);
  expect(argv[4]).toBe(rollDir(ROLL));
  argv[4] = path.join(tmp, 'roll'); // the same script, on a directory of the test's own
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1));
    return { stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; code: number };
    return { stdout: e.stdout, code: e.code };
  }
}

const counter = () => path.join(tmp, 'count');
const lines = () =>
  fs.existsSync(counter()) ? fs.readFileSync(counter(), 'utf8').trim().split('\n').length : 0;

test('runs the command once per roll; a second run runs nothing', async () => {
  const cmd = ['sh', '-c', 'echo patched >> "$1"; echo some apt output', 'x', counter()];
  const first = await guard(cmd);
  expect(parsePatchOutput(first.stdout, first.code)).toEqual({
    result: 'ran',
    exitCode: 0,
    tail: expect.stringContaining('some apt output'),
  });
  const second = await guard(cmd);
  expect(parsePatchOutput(second.stdout, second.code)).toEqual({ result: 'already-done' });
  expect(lines()).toBe(1);
});

test('a failed command is reported with its exit code and runs again next time', async () => {
  const cmd = ['sh', '-c', 'echo try >> "$1"; echo E: broken mirror >&2; exit 3', 'x', counter()];
  const first = await guard(cmd);
  expect(first.code).toBe(3);
  expect(parsePatchOutput(first.stdout, first.code)).toEqual({
    result: 'ran',
    exitCode: 3,
    tail: expect.stringContaining('E: broken mirror'),
  });
  await guard(cmd);
  expect(lines()).toBe(2);
});

test('a retry that arrives while an attempt still runs waits for it, then runs nothing', async () => {
  const cmd = ['sh', '-c', 'sleep 0.7; echo patched >> "$1"', 'x', counter()];
  const [a, b] = await Promise.all([
    guard(cmd),
    new Promise((r) => setTimeout(r, 150)).then(() => guard(cmd)),
  ]);
  const results = [a, b].map((r) => parsePatchOutput(r.stdout, r.code).result).sort();
  expect(results).toEqual(['already-done', 'ran']);
  expect(lines()).toBe(1);
});

test('arguments reach the program verbatim, never as shell syntax', async () => {
  const nasty = ['$(touch pwned)', '; touch pwned2', 'it\'s "quoted"', 'a b  c', '*'];
  const out = path.join(tmp, 'args');
  await guard(['sh', '-c', 'for a in "$@"; do printf "%s\\n" "$a"; done > "$0"', out, ...nasty]);
  expect(fs.readFileSync(out, 'utf8').split('\n').slice(0, -1)).toEqual(nasty);
  expect(fs.existsSync('pwned') || fs.existsSync(path.join(tmp, 'pwned'))).toBe(false);
});

test('output that is not the guard’s is a guard failure', () => {
  expect(parsePatchOutput('', 96)).toEqual({ result: 'guard-failed', exitCode: 96 });
  expect(parsePatchOutput('QM-PATCH already-done\n', 0)).toEqual({ result: 'already-done' });
});

test('roll ids are checked before they name a directory', () => {
  expect(() => rollDir('../../etc')).toThrow();
  expect(() => rollDir('x')).toThrow();
  expect(scheduleRebootArgv(ROLL)[1]).toBe(`--unit=qm-patch-reboot-${ROLL}`);
});
