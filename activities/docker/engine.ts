import http from 'node:http';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import Docker from 'dockerode';
import { failure, FailureType } from '../errors';
import type { SshPool } from '../ssh/pool';

/**
 * An http.Agent whose sockets are streamlocal forwards to the host's Docker socket over the pooled
 * SSH connection: one handshake per host for the life of the worker, where dockerode's own 'ssh'
 * transport makes a new SSH connection (250-360 ms) for every API call.
 */
class SshDockerAgent extends http.Agent {
  constructor(
    private readonly pool: SshPool,
    private readonly host: string,
    private readonly socketPath: string,
  ) {
    super({ keepAlive: false });
  }

  /**
   * docker-modem runs util.inspect(showHidden, depth: null) over every request's options, whether
   * or not its debug log is on; without this it walks the whole SSH pool (seconds per call in a
   * worker, blocking the event loop).
   */
  [inspect.custom]() {
    return `SshDockerAgent(${this.host}:${this.socketPath})`;
  }

  override createConnection(
    _options: unknown,
    callback?: (err: Error | null, socket: Duplex) => void,
  ): undefined {
    this.pool.forwardStreamLocal(this.host, this.socketPath).then(
      (channel) => {
        // http expects a net.Socket; an SSH channel is a plain duplex stream.
        const socket = channel as unknown as Duplex & Record<string, unknown>;
        for (const noop of ['setNoDelay', 'setKeepAlive', 'setTimeout', 'ref', 'unref'])
          socket[noop] ??= () => socket;
        callback?.(null, socket);
      },
      (err: Error) => callback?.(this.explain(err), undefined as unknown as Duplex),
    );
    return undefined;
  }

  /**
   * sshd refuses the forward (a "Channel open failure") when nothing listens on the socket: the
   * host answers but its Docker engine does not. Say so, rather than blame the SSH connection.
   */
  private explain(err: Error): Error {
    if (!/Channel open failure/i.test(err.message)) return err;
    return failure(
      FailureType.HostUnreachable,
      `the Docker engine of ${this.host} does not accept connections on ${this.socketPath} ` +
        `(SSH to the host works; is dockerd running?)`,
      { host: this.host, socket: this.socketPath, engineDown: true },
    );
  }
}

/** dockerode clients per host, each talking through that host's pooled SSH connection. */
export class DockerEngines {
  private readonly clients = new Map<string, Docker>();
  constructor(private readonly pool: SshPool) {}

  engine(hostName: string): Docker {
    let docker = this.clients.get(hostName);
    if (!docker) {
      const host = this.pool.host(hostName);
      const agent = new SshDockerAgent(this.pool, hostName, host.dockerSocket);
      // dockerode's http modem: any host/port works, the agent decides where the bytes go
      docker = new Docker({ protocol: 'http', host: hostName, port: 2375, agent } as Docker.DockerOptions);
      this.clients.set(hostName, docker);
    }
    return docker;
  }
}
