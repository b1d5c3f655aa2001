import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { verify } from '../../api/signature';
import { eventually } from '../support/eventually';

/**
 * The post-receive hook (activities/git/post-receive.pl) run for real, by perl, against an HTTP
 * server on loopback that checks its signature with the API's own verify(): what it sends, that a
 * platform that does not answer loses nothing (spooled, the pusher told, delivered later by the
 * detached retrier), and that a refused notification is kept for ops.
 */

const HOOK = path.join(__dirname, '..', '..', 'activities', 'git', 'post-receive.pl');
const SECRET = 'a'.repeat(64);
const OLD = '1'.repeat(40);
const NEW = '2'.repeat(40);

interface Received {
  body: string;
  ok: boolean;
}

let dir: string;
let server: http.Server;
let received: Received[];
let answer: number;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-hook-'));
  received = [];
  answer = 200;
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const verdict = verify(
        {
          timestamp: req.headers['x-qm-timestamp'],
          nonce: req.headers['x-qm-nonce'],
          signature: req.headers['x-qm-signature'],
        },
        { method: req.method!, path: req.url!, body },
        [SECRET],
      );
      received.push({ body: body.toString(), ok: verdict.ok });
      res.writeHead(verdict.ok ? answer : 401, { 'content-type': 'text/plain' });
      res.end(answer === 200 ? 'deploying 222222222222 to acme\n' : 'no\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  fs.mkdirSync(path.join(dir, 'spool'));
  fs.mkdirSync(path.join(dir, 'failed'));
  fs.writeFileSync(
    path.join(dir, 'hook.json'),
    JSON.stringify({ url: `http://127.0.0.1:${port}/hooks/git`, gitRoot: path.join(dir, 'git') }),
  );
  fs.writeFileSync(path.join(dir, 'hook.secret'), SECRET + '\n', { mode: 0o600 });
  fs.mkdirSync(path.join(dir, 'git', 'customers', 'acme.git'), { recursive: true });
});

afterEach(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Run the hook as git would (in the repository, the pushed refs on stdin); its stderr is what the pusher sees. */
function hookStderr(stdin: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('perl', [HOOK], {
      cwd: path.join(dir, 'git', 'customers', 'acme.git'),
      env: { ...process.env, QM_GIT_HOOK_DIR: dir, QM_PUSHER: 'alice' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(stdin);
  });
}

const spooled = () => fs.readdirSync(path.join(dir, 'spool'));

test('a push is sent signed, with repo, branch, old and new commit and pusher; tags and deletions are not', async () => {
  const { code, stderr } = await hookStderr(
    `${OLD} ${NEW} refs/heads/main\n${OLD} ${NEW} refs/tags/v1\n${OLD} ${'0'.repeat(40)} refs/heads/gone\n`,
  );
  expect(code).toBe(0);
  expect(received).toHaveLength(1);
  expect(received[0]!.ok).toBe(true);
  expect(JSON.parse(received[0]!.body)).toMatchObject({
    repo: 'customers/acme.git',
    ref: 'refs/heads/main',
    before: OLD,
    after: NEW,
    pusher: 'alice',
  });
  expect(stderr).toContain('qm: deploying 222222222222 to acme');
  expect(spooled()).toEqual([]);
});

test('the platform down: the push is not held up, the pusher is told, the notification is delivered later', async () => {
  answer = 503;
  const { code, stderr } = await hookStderr(`${OLD} ${NEW} refs/heads/main\n`);
  expect(code).toBe(0);
  expect(stderr).toMatch(/qm: the platform did not take the notification yet \(503 .*\); 1 kept in .*spool/);
  expect(spooled()).toHaveLength(1);
  answer = 200; // the platform is back: the detached retrier delivers it
  expect(
    await eventually(() => spooled().length === 0, {
      what: 'the retrier to empty the spool',
      timeoutMs: 20_000,
      intervalMs: 100,
    }),
  ).toBe(true);
  expect(received.filter((r) => r.ok).map((r) => JSON.parse(r.body).after as string)).toEqual([NEW, NEW]);
});

test('a notification the platform refuses (bad signature) is kept for ops, and the pusher is told', async () => {
  fs.writeFileSync(path.join(dir, 'hook.secret'), 'b'.repeat(64));
  const { code, stderr } = await hookStderr(`${OLD} ${NEW} refs/heads/main\n`);
  expect(code).toBe(0);
  expect(stderr).toContain('the platform REFUSED the notification (401)');
  expect(spooled()).toEqual([]);
  expect(fs.readdirSync(path.join(dir, 'failed'))).toHaveLength(1);
});

test('no configuration: the push goes through, and the pusher is told nothing was notified', async () => {
  fs.rmSync(path.join(dir, 'hook.json'));
  const { code, stderr } = await hookStderr(`${OLD} ${NEW} refs/heads/main\n`);
  expect(code).toBe(0);
  expect(stderr).toContain('qm: NOT notifying the platform of this push');
  expect(received).toEqual([]);
});
