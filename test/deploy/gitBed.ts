import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Fleet } from '../../activities/fleet';
import { gitHookPlugin, type GitHookOptions } from '../../api/gitHook';
import { probeThroughProxy } from '../../activities/proxy/probe';
import { CLIENT_KEY, TESTBED_DIR } from '../../dev/fleet';
import type { Bed } from '../support/bed';
import { startWorker, uniqueTaskQueue } from '../support/temporal';

const run = promisify(execFile);

/**
 * The Git side of the deploy tests: a receiver (the Git webhook) on the bed's bridge address,
 * where the hooks on the bed's git host reach the machine; a worker that knows the webhook's URL
 * and secret; local clones that push over SSH to the git host, as a developer would.
 */

/** The machine's address on the bed's bridge ($SUBNET.1): what the git host reaches. */
export function bridgeAddress(fleet: Fleet): string {
  return fleet.hosts[0]!.address.replace(/\.\d+$/, '.1');
}

export interface DeployBed {
  taskQueue: string;
  secret: string;
  hookUrl: string;
  receiver: FastifyInstance;
  /** Stop the in-process worker (a test then runs the worker as its own process on the same queue). */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

/** A worker (real activities, with the Git hook config) and the webhook receiver on one task queue. */
export async function startDeployBed(
  bed: Bed,
  deployDefaults: GitHookOptions['deployDefaults'],
): Promise<DeployBed> {
  const taskQueue = uniqueTaskQueue('deploy');
  const secret = randomBytes(32).toString('hex');
  const receiver = Fastify({ logger: false });
  await receiver.register(gitHookPlugin, {
    client: bed.env.client,
    taskQueue,
    secrets: [secret],
    deployDefaults,
  });
  await receiver.listen({ host: bridgeAddress(bed.fleet), port: 0 });
  const { port } = receiver.server.address() as { port: number };
  const hookUrl = `http://${bridgeAddress(bed.fleet)}:${port}/hooks/git`;
  const worker = await startWorker(bed, { taskQueue, gitHook: { url: hookUrl, secret } });
  return {
    taskQueue,
    secret,
    hookUrl,
    receiver,
    stopWorker: () => worker.stop(),
    async stop() {
      await receiver.close();
      await worker.stop();
    },
  };
}

/** A developer's clone of a platform repository, pushing over SSH with the bed's key. */
export class Clone {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-clone-'));
  private constructor(readonly remote: string) {}

  static async create(fleet: Fleet, repo: string): Promise<Clone> {
    const gitHost = fleet.hosts.find((h) => h.roles.includes('git'))!;
    const clone = new Clone(`root@${gitHost.address}:/srv/git/${repo}`);
    await clone.git('init', '--quiet', '-b', 'main');
    await clone.git('config', 'user.email', 'dev@example.test');
    await clone.git('config', 'user.name', 'Dev');
    await clone.git('remote', 'add', 'origin', clone.remote);
    return clone;
  }

  async git(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('git', ['-C', this.dir, ...args], {
      env: {
        ...process.env,
        GIT_SSH_COMMAND:
          `ssh -F /dev/null -i ${CLIENT_KEY} -o IdentitiesOnly=yes -o BatchMode=yes ` +
          `-o UserKnownHostsFile=${path.join(TESTBED_DIR, 'keys', 'known_hosts')} -o StrictHostKeyChecking=yes`,
      },
    });
  }

  /** Commit these files (path → content; null deletes) and push to `branch`; its id and the push's stderr. */
  async push(
    branch: string,
    files: Record<string, string | null>,
    message = 'change',
  ): Promise<{ commit: string; stderr: string }> {
    for (const [name, content] of Object.entries(files)) {
      if (content === null) {
        fs.rmSync(path.join(this.dir, name), { force: true });
        continue;
      }
      fs.mkdirSync(path.dirname(path.join(this.dir, name)), { recursive: true });
      fs.writeFileSync(path.join(this.dir, name), content);
    }
    await this.git('add', '-A');
    await this.git('commit', '--quiet', '--allow-empty', '-m', message);
    const commit = (await this.git('rev-parse', 'HEAD')).stdout.trim();
    const { stderr } = await this.git('push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
    return { commit, stderr };
  }

  remove() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * GET the site through the proxy over and over until stopped (bounded: at most `maxMs`), counting
 * every answer that is not a 200 with the site's page: what a visitor would have seen fail.
 */
export function pollSite(fleet: Fleet, domain: string, maxMs = 120_000) {
  const proxy = fleet.hosts.find((h) => h.roles.includes('proxy'))!;
  let stopped = false;
  const seen = { ok: 0, failed: [] as string[], releases: new Set<string>() };
  const until = Date.now() + maxMs;
  const loop = (async () => {
    while (!stopped && Date.now() < until) {
      try {
        const r = await probeThroughProxy({ address: proxy.address, domain, path: '/', timeoutMs: 5000 });
        const m = /release (\S+)/.exec(r.bodyExcerpt);
        if (r.status === 200 && m) {
          seen.ok++;
          seen.releases.add(m[1]!);
        } else seen.failed.push(`${r.status} ${r.bodyExcerpt.slice(0, 80)}`);
      } catch (err) {
        seen.failed.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    seen,
    async stop() {
      stopped = true;
      await loop;
      return seen;
    },
  };
}
