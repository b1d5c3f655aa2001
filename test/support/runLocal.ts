import { spawn } from 'node:child_process';

/**
 * Run an argv locally, as SshPool.exec runs one on a host, with `stdin` written to it; resolves to
 * [exit code, stdout, stderr]. For the unit tests of the remote-command builders (the commands.ts of each activity group).
 */
export function runLocal(argv: string[], stdin = ''): Promise<[number | null, string, string]> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1));
    let out = '';
    let err = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve([code, out, err]));
    // a script that never reads its stdin may exit before we finish writing it: not a failure
    p.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    p.stdin.end(stdin);
  });
}
