import { createHash } from 'node:crypto';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Host } from '../../schema/inventory';
import { failure, FailureType } from '../errors';
import { PGID_MARKER, remoteCommandLine } from './quote';

export interface SshPoolOptions {
  /** The orchestrator's private key (contents). Either this or `agent`. */
  privateKey?: Buffer | string;
  /** Path of an ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string;
  /** Channels (commands, Docker calls, transfers) open at once per host; OpenSSH allows 10 by default. */
  maxChannelsPerHost?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  connectTimeoutMs?: number;
}

export interface ExecOptions {
  /** Fed to the command's stdin, then closed. Secrets travel here, never on the command line. */
  stdin?: Readable | string | Buffer;
  /** Stream stdout here instead of capturing it (for dumps and archives). */
  stdout?: Writable;
  /** Also stream stderr here (it is captured, up to a bound, in any case). */
  stderr?: Writable;
  /** Stop the remote command (SIGTERM to its process group) after this long. */
  timeoutMs?: number;
  /** Cancellation (an activity's cancellationSignal): stops the remote command. */
  signal?: AbortSignal;
  /** Throw CommandFailed on a non-zero exit (default true). */
  check?: boolean;
  /** Called whenever output arrives and every second while the command runs: a long command heartbeats. */
  onActivity?: () => void;
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  /** Captured stdout (empty when `stdout` was given); at most 8 MiB are kept. */
  stdout: string;
  /** The last 64 KiB of stderr. */
  stderr: string;
}

const MAX_CAPTURE = 8 * 1024 * 1024;
const MAX_STDERR = 64 * 1024;

/** OpenSSH's form of a key fingerprint: SHA256: and unpadded base64 of the key blob's digest. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** A counting semaphore: a bound on channels per host. */
class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.waiting = this.waiting.filter((w) => w !== grant);
          reject(signal?.reason ?? new Error('aborted'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(grant);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

interface Connection {
  client: Client;
  ready: Promise<Client>;
  closed: boolean;
}

/**
 * One SSH connection per host, shared by every command, Docker API call and file transfer that
 * this process makes to that host. Host keys are checked against the inventory's pins; a dropped
 * connection is forgotten and the next call reconnects.
 */
export class SshPool {
  private readonly hosts = new Map<string, Host>();
  private readonly connections = new Map<string, Connection>();
  private readonly channels = new Map<string, Semaphore>();
  private readonly opts: Required<Omit<SshPoolOptions, 'privateKey' | 'agent'>> & SshPoolOptions;
  private closing = false;

  constructor(hosts: readonly Host[], opts: SshPoolOptions) {
    if (!opts.privateKey && !opts.agent) throw new Error('SshPool needs a privateKey or an agent');
    for (const h of hosts) this.hosts.set(h.name, h);
    this.opts = {
      maxChannelsPerHost: 8,
      keepaliveIntervalMs: 5000,
      keepaliveCountMax: 3,
      connectTimeoutMs: 10000,
      ...opts,
    };
  }

  /** The inventory entry of a host; an unknown name is bad input, never retried. */
  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw failure(FailureType.InvalidInput, `unknown host ${JSON.stringify(name)}`, { host: name });
    return h;
  }

  hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  /** The live connection to a host, connecting (once, however many callers wait) if needed. */
  connection(name: string): Promise<Client> {
    if (this.closing) return Promise.reject(new Error('the SSH pool is closed'));
    const existing = this.connections.get(name);
    if (existing && !existing.closed) return existing.ready;
    const conn = this.connect(this.host(name));
    this.connections.set(name, conn);
    conn.ready.catch(() => this.forget(name, conn));
    return conn.ready;
  }

  private forget(name: string, conn: Connection) {
    conn.closed = true;
    if (this.connections.get(name) === conn) this.connections.delete(name);
  }

  private connect(host: Host): Connection {
    const client = new Client();
    // every running command listens for the connection's close
    client.setMaxListeners(this.opts.maxChannelsPerHost + 10);
    const conn: Connection = { client, closed: false, ready: undefined as unknown as Promise<Client> };
    let hostKeyRejected: string | undefined;
    conn.ready = new Promise<Client>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error & { level?: string; code?: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.end();
        sock.destroy();
        const where = `${host.name} (${host.address}:${host.port})`;
        if (hostKeyRejected) {
          reject(
            failure(
              FailureType.HostKeyMismatch,
              `host key of ${where} is ${hostKeyRejected}, not one pinned in the inventory: refusing to connect`,
              { host: host.name, presented: hostKeyRejected, pinned: host.hostKeys },
            ),
          );
        } else if (err.level === 'client-authentication') {
          reject(
            failure(FailureType.AuthFailed, `${where} refused our key for user ${host.user}`, {
              host: host.name,
            }),
          );
        } else {
          reject(
            failure(FailureType.HostUnreachable, `cannot reach ${where}: ${err.message}`, {
              host: host.name,
              code: err.code,
            }),
          );
        }
      };
      // Our own socket, so that TCP_NODELAY is set: without it each channel open waits ~40 ms.
      const sock = net.connect({ host: host.address, port: host.port, noDelay: true });
      sock.setKeepAlive(true, this.opts.keepaliveIntervalMs);
      const timer = setTimeout(
        () =>
          fail(
            Object.assign(new Error(`no SSH handshake within ${this.opts.connectTimeoutMs} ms`), {
              code: 'ETIMEDOUT',
            }),
          ),
        this.opts.connectTimeoutMs,
      );
      sock.once('error', fail);
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.removeListener('error', fail);
        resolve(client);
      });
      client.on('error', (err) => {
        if (!settled) return fail(err);
        // After the handshake (a keepalive timeout, a protocol error): the connection is done for.
        // Destroy the socket rather than end it, so that 'close' (and with it the failure of every
        // command still running on it) comes now, not when TCP gives up on a dead peer.
        this.forget(host.name, conn);
        sock.destroy();
      });
      client.on('close', () => {
        this.forget(host.name, conn);
        if (!settled) fail(new Error('connection closed during handshake'));
      });
      const config: ConnectConfig = {
        sock,
        username: host.user,
        privateKey: this.opts.privateKey,
        agent: this.opts.agent,
        keepaliveInterval: this.opts.keepaliveIntervalMs,
        keepaliveCountMax: this.opts.keepaliveCountMax,
        readyTimeout: this.opts.connectTimeoutMs,
        hostVerifier: (key: Buffer) => {
          const fp = fingerprint(key);
          if (host.hostKeys.includes(fp)) return true;
          hostKeyRejected = fp;
          return false;
        },
      };
      sock.once('connect', () => client.connect(config));
    });
    return conn;
  }

  private semaphore(name: string): Semaphore {
    let s = this.channels.get(name);
    if (!s) this.channels.set(name, (s = new Semaphore(this.opts.maxChannelsPerHost)));
    return s;
  }

  /**
   * Run a command on a host. `argv` is an argument vector: each element reaches the remote program
   * as exactly one argument, whatever characters it holds.
   */
  async exec(name: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.host(name);
    let command: string;
    try {
      command = remoteCommandLine(argv);
    } catch (err) {
      throw failure(FailureType.InvalidInput, `cannot run a command on ${name}: ${(err as Error).message}`, {
        host: name,
      });
    }
    const release = await this.semaphore(name).acquire(options.signal);
    try {
      const client = await this.connection(name);
      return await runChannel(name, client, command, argv[0]!, options);
    } finally {
      release();
    }
  }

  /**
   * A stream to a Unix socket on the host (OpenSSH's streamlocal forward), e.g. the Docker engine's
   * API socket. It holds one of the host's channel slots until it closes.
   */
  async forwardStreamLocal(name: string, socketPath: string): Promise<ClientChannel> {
    const release = await this.semaphore(name).acquire();
    try {
      const client = await this.connection(name);
      const channel = await new Promise<ClientChannel>((resolve, reject) =>
        client.openssh_forwardOutStreamLocal(socketPath, (err, ch) => (err ? reject(err) : resolve(ch))),
      );
      channel.once('close', release);
      return channel;
    } catch (err) {
      release();
      throw unreachable(name, err);
    }
  }

  /** Close a host's connection (the next call reconnects). */
  drop(name: string) {
    const conn = this.connections.get(name);
    if (conn) {
      this.forget(name, conn);
      conn.client.end();
    }
  }

  async close() {
    this.closing = true;
    for (const [name, conn] of [...this.connections]) {
      this.forget(name, conn);
      conn.client.end();
    }
  }
}

function unreachable(host: string, err: unknown) {
  if (err instanceof Error && 'type' in err) return err; // already an ApplicationFailure
  const message = err instanceof Error ? err.message : String(err);
  return failure(FailureType.HostUnreachable, `lost the SSH connection to ${host}: ${message}`, { host });
}

/** How often a running command heartbeats (the Temporal SDK throttles heartbeats to the server). */
const HEARTBEAT_EVERY_MS = 1000;
/** After SIGTERM, how long a stopped command has before SIGKILL and the channel is closed. */
const KILL_AFTER_MS = 2000;
/** Stderr held back while looking for the wrapper's PGID line (a login shell's rc files may print first). */
const MAX_PREAMBLE = 64 * 1024;

type StopReason = 'timeout' | 'cancel' | 'local';

function runChannel(
  host: string,
  client: Client,
  command: string,
  argv0: string,
  o: ExecOptions,
): Promise<ExecResult> {
  const check = o.check ?? true;
  return new Promise<ExecResult>((resolve, reject) => {
    if (o.signal?.aborted) return reject(o.signal.reason ?? new Error('cancelled'));
    const onOpen = (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(unreachable(host, err));
      const stdoutDecoder = new StringDecoder('utf8');
      const stderrDecoder = new StringDecoder('utf8');
      let stdout = '';
      let stdoutBytes = 0;
      let stderr = '';
      let exitCode: number | null | undefined;
      let exitSignal: string | undefined;
      let stoppedBy: StopReason | undefined;
      let localError: Error | undefined;
      let channelError: Error | undefined;
      let killTimer: NodeJS.Timeout | undefined;

      // The remote process group, reported by the wrapper on a line of its own before the command
      // starts. Stderr before that line (a noisy .bashrc) is passed on once the line is found.
      let pgid: number | undefined;
      let preamble: string | undefined = '';
      const signalGroup = (sig: 'TERM' | 'KILL') => {
        if (pgid === undefined) return;
        try {
          // a channel of its own, outside the per-host bound: a stop must not queue behind what it stops
          client.exec(`kill -${sig} -- -${pgid}`, (e, s) => {
            if (!e) s.resume().stderr.resume();
          });
        } catch {
          // the connection is gone: so is the session, and sshd has hung up on the command
        }
      };
      const stop = (why: StopReason) => {
        if (stoppedBy) return;
        stoppedBy = why;
        signalGroup('TERM');
        killTimer = setTimeout(() => {
          signalGroup('KILL');
          stream.close();
        }, KILL_AFTER_MS);
      };
      const onLocalError = (e: Error) => {
        localError ??= e;
        if (o.stdout) {
          // a failed sink unpipes itself and leaves the channel paused: it would never see its end
          stream.unpipe(o.stdout);
          stream.resume();
        }
        stop('local');
      };
      const timer = o.timeoutMs ? setTimeout(() => stop('timeout'), o.timeoutMs) : undefined;
      const onAbort = () => stop('cancel');
      o.signal?.addEventListener('abort', onAbort, { once: true });
      // A quiet command (a restore, a long sleep) still heartbeats, so that Temporal can tell the
      // activity is alive and can deliver a cancellation to it.
      const beat = o.onActivity ? setInterval(o.onActivity, HEARTBEAT_EVERY_MS) : undefined;
      if (o.signal?.aborted) stop('cancel'); // aborted while the channel was opening

      stream.on('error', (e: Error) => (channelError ??= e));
      if (o.stdout) {
        o.stdout.on('error', onLocalError);
        stream.pipe(o.stdout, { end: false });
        if (o.onActivity) stream.on('data', o.onActivity);
      } else {
        stream.on('data', (chunk: Buffer) => {
          o.onActivity?.();
          const room = MAX_CAPTURE - stdoutBytes;
          if (room > 0) stdout += stdoutDecoder.write(chunk.length > room ? chunk.subarray(0, room) : chunk);
          stdoutBytes += chunk.length;
        });
      }
      const addStderr = (text: string) => {
        if (!text) return;
        o.stderr?.write(text);
        stderr = (stderr + text).slice(-MAX_STDERR);
      };
      stream.stderr.on('data', (chunk: Buffer) => {
        o.onActivity?.();
        const text = stderrDecoder.write(chunk);
        if (preamble === undefined) return addStderr(text);
        preamble += text;
        const found = findPgidLine(preamble);
        if (found) {
          pgid = found.pgid;
          preamble = undefined;
          if (stoppedBy) signalGroup('TERM'); // a stop asked for before we knew whom to signal
          addStderr(found.rest);
        } else if (preamble.length > MAX_PREAMBLE) {
          addStderr(preamble);
          preamble = undefined;
        }
      });
      stream.on('exit', (code: number | null, signal?: string) => {
        exitCode = code;
        exitSignal = signal ?? undefined;
      });
      stream.once('close', () => {
        clearTimeout(timer);
        clearTimeout(killTimer);
        clearInterval(beat);
        o.signal?.removeEventListener('abort', onAbort);
        if (o.stdin && typeof o.stdin !== 'string' && !Buffer.isBuffer(o.stdin)) {
          o.stdin.unpipe(stream);
          o.stdin.removeListener('error', onLocalError);
        }
        o.stdout?.removeListener('error', onLocalError);
        if (o.stdout) stream.unpipe(o.stdout);
        if (preamble) addStderr(preamble);
        addStderr(stderrDecoder.end());
        if (stdoutBytes <= MAX_CAPTURE) stdout += stdoutDecoder.end();
        const finish = () => {
          const where = `${host}: ${argv0}`;
          if (stoppedBy === 'cancel') return reject(o.signal?.reason ?? new Error('cancelled'));
          if (stoppedBy === 'local')
            return reject(
              failure(FailureType.CommandFailed, `${where} was stopped: ${localError?.message}`, {
                host,
                argv0,
              }),
            );
          if (stoppedBy === 'timeout')
            return reject(
              failure(FailureType.CommandTimeout, `${where} ran past ${o.timeoutMs} ms and was stopped`, {
                host,
                argv0,
                stderr: stderr.slice(-2000),
              }),
            );
          if (exitCode === undefined)
            return reject(
              unreachable(host, channelError ?? new Error(`connection lost while running ${argv0}`)),
            );
          const result: ExecResult = { code: exitCode, signal: exitSignal, stdout, stderr };
          if (check && exitCode !== 0)
            return reject(
              failure(
                FailureType.CommandFailed,
                `${where} exited ${exitCode ?? 'by signal ' + exitSignal}: ${lastLine(stderr)}`,
                { host, argv0, code: exitCode, signal: exitSignal, stderr: stderr.slice(-2000) },
              ),
            );
          resolve(result);
        };
        // let a piped stdout drain what it was given before we report
        if (o.stdout && o.stdout.writableNeedDrain && !o.stdout.destroyed) o.stdout.once('drain', finish);
        else finish();
      });

      if (o.stdin === undefined) stream.end();
      else if (typeof o.stdin === 'string' || Buffer.isBuffer(o.stdin)) stream.end(o.stdin);
      else {
        o.stdin.on('error', onLocalError);
        o.stdin.pipe(stream);
      }
    };
    try {
      client.exec(command, onOpen);
    } catch (err) {
      // ssh2 throws "Not connected" when the socket closed after the pool handed the client out
      reject(unreachable(host, err));
    }
  });
}

/** The wrapper's `qm-pgid N` line in the stderr seen so far, and the stderr around it. */
export function findPgidLine(text: string): { pgid: number; rest: string } | undefined {
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return undefined;
    const line = text.slice(start, nl);
    const m = line.startsWith(PGID_MARKER) ? /^\d+$/.exec(line.slice(PGID_MARKER.length)) : null;
    // a session's group is never init's (1) nor "my own group" (0): never signal -1 or -0
    if (m && Number(m[0]) > 1) return { pgid: Number(m[0]), rest: text.slice(0, start) + text.slice(nl + 1) };
    start = nl + 1;
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}
