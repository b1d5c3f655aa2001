import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findPgidLine } from '../../activities/ssh/pool';
import { PGID_MARKER, quoteArg, quoteArgv, remoteCommandLine } from '../../activities/ssh/quote';

/**
 * Quoting is proved by running the generated line through real shells (the ones a remote login
 * shell is likely to be) and checking that the program receives exactly the arguments we meant:
 * `printf '%s\0' "$@"` writes each argument NUL-terminated, which no argument can contain.
 */
const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash', '/usr/bin/busybox'].filter((s) => fs.existsSync(s));

// bash sources ~/.bashrc when its stdin is a socket (as under sshd, and as Node's pipes are): give it
// an empty home, so that only our line runs. (A noisy remote rc file is the pool's concern: see ssh.test.ts.)
const CLEAN_ENV = { PATH: process.env.PATH, HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'qm-quote-home-')) };
afterAll(() => fs.rmSync(CLEAN_ENV.HOME, { recursive: true, force: true }));

function shellArgv(shell: string, line: string): string[] {
  return shell.endsWith('busybox') ? [shell, 'sh', '-c', line] : [shell, '-c', line];
}

/** Run `line` as sshd would (`$SHELL -c line`) and return the NUL-separated stdout as arguments. */
function runLine(shell: string, line: string): { args: string[]; stderr: string; pid: number | undefined } {
  const [file, ...args] = shellArgv(shell, line);
  const r = spawnSync(file!, args, { encoding: 'buffer', timeout: 10_000, env: CLEAN_ENV });
  if (r.error) throw r.error;
  expect({ status: r.status, stderr: r.stderr.toString() }).toEqual(expect.objectContaining({ status: 0 }));
  const out = r.stdout.toString('utf8');
  expect(out.endsWith('\0') || out === '').toBe(true);
  return { args: out === '' ? [] : out.slice(0, -1).split('\0'), stderr: r.stderr.toString(), pid: r.pid };
}

const HOSTILE: string[] = [
  '',
  ' ',
  'two words',
  '  leading and trailing  ',
  "it's",
  "'",
  "''",
  "'\\''",
  '"double"',
  '"',
  '$(touch /tmp/qm-quote-injected)',
  '`touch /tmp/qm-quote-injected`',
  '$HOME',
  '${IFS}',
  '$$',
  '$',
  '\\',
  '\\n',
  'a\nb',
  '\n',
  'tab\there',
  '\r\n',
  '; rm -rf / #',
  '| cat /etc/passwd',
  '&& echo pwned &',
  '> /tmp/qm-quote-redirect',
  '< /etc/passwd',
  '*',
  '/*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '{a,b}',
  '!',
  '!!',
  '#comment',
  '-n',
  '-e',
  '--',
  '--help',
  '-rf',
  '%s%n',
  'A=b',
  'if',
  'then',
  'fi',
  'time',
  'ünïcødé',
  'Ω≈ç√∫',
  '日本語のテキスト',
  '🙂👍🏽',
  'zero\u200bwidth',
  'rtl\u202eoverride',
  '\u0001\u0002\u001b[31mred\u001b[0m\u007f',
];

/** A deterministic pseudo-random generator (so a failure reproduces). */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Strings of any characters but NUL: ASCII (control and shell-special ones weighted up) and beyond. */
function randomStrings(count: number, seed: number): string[] {
  const rnd = prng(seed);
  const special = ` \t\n'"\\$\`;|&<>(){}[]*?!~#=%,-`;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = Math.floor(rnd() * 24);
    let s = '';
    for (let j = 0; j < len; j++) {
      const r = rnd();
      if (r < 0.5) s += special[Math.floor(rnd() * special.length)];
      else if (r < 0.8) s += String.fromCharCode(1 + Math.floor(rnd() * 126));
      else if (r < 0.95) s += String.fromCharCode(0xa0 + Math.floor(rnd() * 0x2000));
      else s += '😀';
    }
    out.push(s);
  }
  return out;
}

const PRINT_ARGS = ['printf', '%s\\0'];

describe.each(SHELLS)('through %s', (shell) => {
  test('quoteArgv: each hostile string arrives as exactly one, unchanged argument', () => {
    const line = quoteArgv([...PRINT_ARGS, ...HOSTILE]);
    expect(runLine(shell, line).args).toEqual(HOSTILE);
  });

  test('quoteArgv: each hostile string also survives alone (no neighbour to lean on)', () => {
    for (const s of HOSTILE) {
      expect(runLine(shell, quoteArgv([...PRINT_ARGS, s])).args).toEqual([s]);
    }
  });

  test('quoteArgv: 300 random strings of any non-NUL characters round-trip', () => {
    const strings = randomStrings(300, 20240509);
    // in batches, to keep each line far from ARG_MAX
    for (let i = 0; i < strings.length; i += 50) {
      const batch = strings.slice(i, i + 50);
      expect(runLine(shell, quoteArgv([...PRINT_ARGS, ...batch])).args).toEqual(batch);
    }
  });

  test('remoteCommandLine: the wrapper reports its process group first, then runs argv unchanged', () => {
    const r = runLine(shell, remoteCommandLine([...PRINT_ARGS, ...HOSTILE]));
    expect(r.args).toEqual(HOSTILE);
    const first = r.stderr.split('\n')[0]!;
    expect(first).toMatch(new RegExp(`^${PGID_MARKER}\\d+$`));
  });

  test('a command word that the shell would read as an assignment or a keyword is still run as a program', () => {
    // `A=b cmd` would set a variable, `if` would open a compound command: both must stay words.
    // A program of each such name, first on PATH, says it ran and with which arguments.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-quote-bin-'));
    try {
      const words = ['A=b', 'if', 'while', 'done', '!', '{'];
      // (busybox runs its own `time` applet before looking at PATH: a lookup rule, not parsing)
      if (!shell.endsWith('busybox')) words.push('time');
      for (const w of words) {
        fs.writeFileSync(path.join(bin, w), `#!/bin/sh\nprintf '%s\\0' ran "$@"\n`, { mode: 0o755 });
      }
      for (const first of words) {
        const [file, ...args] = shellArgv(shell, quoteArgv([first, 'x y']));
        const r = spawnSync(file!, args, {
          encoding: 'utf8',
          env: { ...CLEAN_ENV, PATH: `${bin}:/usr/bin:/bin` },
        });
        expect({ first, stdout: r.stdout, status: r.status }).toEqual({
          first,
          stdout: 'ran\0x y\0',
          status: 0,
        });
      }
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });
});

test('no injection marker was created by any of the runs above', () => {
  expect(fs.existsSync('/tmp/qm-quote-injected')).toBe(false);
  expect(fs.existsSync('/tmp/qm-quote-redirect')).toBe(false);
});

test('the wrapper reports the PGID of the session it runs in', () => {
  // a detached child leads its own process group, as a command under sshd does
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', remoteCommandLine(['true'])], { detached: true });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        expect(code).toBe(0);
        expect(err).toBe(`${PGID_MARKER}${child.pid}\n`);
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
});

describe('quoteArg', () => {
  test('leaves plain words bare (readable in logs) and quotes everything else', () => {
    expect(quoteArg('docker')).toBe('docker');
    expect(quoteArg('/srv/site-1/file.txt')).toBe('/srv/site-1/file.txt');
    expect(quoteArg('--format={{json .}}')).toBe("'--format={{json .}}'");
    expect(quoteArg('')).toBe("''");
    expect(quoteArg("it's")).toBe("'it'\\''s'");
  });

  test('rejects a NUL byte, which no Unix argument can hold', () => {
    expect(() => quoteArg('a\0b')).toThrow(/NUL/);
    expect(() => quoteArgv(['echo', 'a\0b'])).toThrow(/NUL/);
    expect(() => remoteCommandLine(['echo', '\0'])).toThrow(/NUL/);
  });

  test('rejects an empty command', () => {
    expect(() => quoteArgv([])).toThrow(/empty command/);
    expect(() => remoteCommandLine([])).toThrow(/empty command/);
  });
});

describe('findPgidLine (what the pool reads from the wrapper)', () => {
  test('finds the line behind login-shell noise and hands the rest back in order', () => {
    expect(findPgidLine('Welcome\nqm-pgid nope\nqm-pgid 4242\nfrom the command\n')).toEqual({
      pgid: 4242,
      rest: 'Welcome\nqm-pgid nope\nfrom the command\n',
    });
  });

  test('waits for a whole line, and never yields a group that would signal everything', () => {
    expect(findPgidLine('qm-pgid 42')).toBeUndefined();
    expect(findPgidLine('qm-pgid 1\n')).toBeUndefined();
    expect(findPgidLine('qm-pgid 0\n')).toBeUndefined();
    expect(findPgidLine('qm-pgid -1\n')).toBeUndefined();
  });
});
