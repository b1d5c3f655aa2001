import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { AesGcmCodec } from '../client/codec';
import { connectClient } from '../client/connection';
import {
  IdempotencyConflictError,
  IdempotencyKey,
  listSites,
  NoWorkerError,
  OperationId,
  OPERATIONS,
  readOperation,
  readSite,
  SiteNotFoundError,
  startOperation,
  type OperationKind,
  type OperationView,
} from '../client/operations';
import {
  ensureFleetCheckSchedule,
  ensureNightlyBackupSchedule,
  FleetCheckScheduleConfig,
  NightlyScheduleConfig,
} from '../client/schedules';
import { loadEnv, QmEnv } from '../config';
import { InvalidInputError, parseOrThrow } from '../schema/common';
import { SiteId } from '../schema/site';
import { progressLines, siteLines, sitesTable } from './render';

const USAGE = `qm: Quartermaster operations from the shell (the same client code as the billing API)

  qm provision <spec.json|->   provision a site from its spec (a SiteSpec, as JSON; - reads stdin)
  qm suspend <siteId> [--reason TEXT]
  qm resume <siteId>
  qm deprovision <siteId> [--skip-final-backup]
  qm plan <siteId> <starter|business|enterprise>
  qm backup <siteId> [--no-prune]
  qm restore <siteId> <backupId>
  qm deploy <siteId> <ref|commit> [--reason TEXT]   a branch, tag or commit (40 hex digits)
  qm rollback <siteId> <release> [--reason TEXT]    a release still kept on the app servers
  qm repair <siteId> [--reason TEXT]   put the site back as its record says, on every host that
                                answers (a failed site: active again once nothing is out of line)
  qm status <siteId> [--json]   the site's record, lock holder and queue
  qm op <operationId> [--follow] [--json]
  qm sites [--json]             every site, from Temporal visibility
  qm schedule nightly [--hour 1] [--minute 0] [--window 240] [--per-db-host 2]
                                make the nightly backups' Schedule exist as given (UTC; a paused
                                schedule stays paused)
  qm schedule fleet-check [--every 5]
                                make the fleet check's Schedule exist: every N minutes, checkFleet
                                {repair: true} repairs every site failed or out of line

Operations print their id and follow it to the end (--no-follow: just start it). --key K sets the
idempotency key (default: a fresh one); running the same command with the same key never starts
a second operation.

Environment: TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE, QM_TASK_QUEUE (quartermaster),
QM_CODEC_KEY (the worker's payload key). Exit status: 0 done, 1 the operation failed, 2 bad usage
or input, 3 not found, 4 Temporal or the worker did not answer.`;

/** Each command: does it name a site first, and what its second argument is. */
const COMMANDS = {
  provision: { site: false, second: undefined },
  suspend: { site: true, second: undefined },
  resume: { site: true, second: undefined },
  deprovision: { site: true, second: undefined },
  plan: { site: true, second: 'plan' },
  backup: { site: true, second: undefined },
  restore: { site: true, second: 'backupId' },
  deploy: { site: true, second: 'ref|commit' },
  rollback: { site: true, second: 'release' },
  repair: { site: true, second: undefined },
  status: { site: true, second: undefined },
  op: { site: false, second: undefined },
  sites: { site: false, second: undefined },
  schedule: { site: false, second: undefined },
} as const;

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, unavailable: 4 } as const;

class UsageError extends Error {}

interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  readStdin: () => string;
}

const defaultIo: Io = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  readStdin: () => fs.readFileSync(0, 'utf8'),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function whoAmI(): string {
  const name = (process.env.SUDO_USER || os.userInfo().username || 'unknown').replace(
    /[^A-Za-z0-9._-]/g,
    '_',
  );
  return `ops:${name.slice(0, 60)}`;
}

function readJson(path: string, io: Io): unknown {
  const text = path === '-' ? io.readStdin() : fs.readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path === '-' ? 'stdin' : path} is not valid JSON: ${(err as Error).message}`);
  }
}

function readSpec(path: string | undefined, io: Io): { siteId?: unknown } {
  if (!path) throw new UsageError('qm provision <spec.json|->');
  const spec = readJson(path, io);
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw new UsageError('the spec must be a JSON object (a SiteSpec)');
  parseOrThrow(OPERATIONS.provision.input, { site: spec }, 'site spec'); // every bad field named
  return spec as { siteId?: unknown };
}

function siteIdArg(value: string | undefined): string {
  const p = SiteId.safeParse(value);
  if (!p.success)
    throw new UsageError(`bad site id ${JSON.stringify(value ?? '')}: ${p.error.issues[0]!.message}`);
  return p.data;
}

/** `qm schedule nightly|fleet-check`'s settings, checked (unset options take the schedule's defaults). */
function scheduleConfig(
  kind: string | undefined,
  values: { hour?: string; minute?: string; window?: string; 'per-db-host'?: string; every?: string },
):
  | { kind: 'nightly'; config: NightlyScheduleConfig }
  | { kind: 'fleet-check'; config: FleetCheckScheduleConfig } {
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  if (kind === 'fleet-check')
    return {
      kind,
      config: parseOrThrow(
        FleetCheckScheduleConfig,
        { everyMinutes: number(values.every) },
        'qm schedule fleet-check',
      ),
    };
  if (kind !== 'nightly')
    throw new UsageError(
      'qm schedule nightly [--hour H] [--minute M] [--window MINUTES] [--per-db-host N] | qm schedule fleet-check [--every MINUTES]',
    );
  return { kind, config: nightlySchedule(values) };
}

function nightlySchedule(values: {
  hour?: string;
  minute?: string;
  window?: string;
  'per-db-host'?: string;
}): NightlyScheduleConfig {
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return parseOrThrow(
    NightlyScheduleConfig,
    {
      hourUtc: number(values.hour),
      minuteUtc: number(values.minute),
      windowMinutes: number(values.window),
      perDbHost: number(values['per-db-host']),
    },
    'qm schedule nightly',
  );
}

/** Follow an operation until it ends, printing what changes; the exit status says how it ended. */
export async function follow(client: Client, id: string, io: Io, intervalMs = 1000): Promise<number> {
  const parsed = OperationId.safeParse(id);
  if (!parsed.success)
    throw new UsageError(`bad operation id ${JSON.stringify(id)}: ${parsed.error.issues[0]!.message}`);
  let prev: OperationView | undefined;
  for (;;) {
    const view = await readOperation(client, parsed.data);
    if (!view) {
      io.err(`no operation ${id}`);
      return EXIT.notFound;
    }
    for (const line of progressLines(prev, view)) io.out(line);
    if (view.state !== 'RUNNING') return view.state === 'COMPLETED' ? EXIT.ok : EXIT.failed;
    prev = view;
    await sleep(intervalMs);
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      key: { type: 'string' },
      reason: { type: 'string' },
      follow: { type: 'boolean', default: false },
      'no-follow': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'skip-final-backup': { type: 'boolean', default: false },
      'no-prune': { type: 'boolean', default: false },
      hour: { type: 'string' },
      minute: { type: 'string' },
      window: { type: 'string' },
      'per-db-host': { type: 'string' },
      every: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, arg, second, ...extra] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  // Arguments are checked before anything connects: a typo never reaches Temporal.
  if (!(command in COMMANDS)) throw new UsageError(`unknown command ${command} (qm --help)`);
  const shape = COMMANDS[command as keyof typeof COMMANDS];
  const unexpected = shape.second ? extra : [second, ...extra].filter((a) => a !== undefined);
  if (unexpected.length) throw new UsageError(`unexpected arguments: ${unexpected.join(' ')}`);
  if (shape.site) siteIdArg(arg);
  if (shape.second && !second) throw new UsageError(`qm ${command} <siteId> <${shape.second}>`);
  if (command === 'op') {
    const parsed = OperationId.safeParse(arg ?? '');
    if (!parsed.success) throw new UsageError(`bad operation id: ${parsed.error.issues[0]!.message}`);
  }
  if (values.key !== undefined) {
    const k = IdempotencyKey.safeParse(values.key);
    if (!k.success) throw new UsageError(`bad --key: ${k.error.issues[0]!.message}`);
  }
  const spec = command === 'provision' ? readSpec(arg, io) : undefined;
  const schedule = command === 'schedule' ? scheduleConfig(arg, values) : undefined;
  // the operations on a site, with their input (checked against the workflow's schema on start)
  const onSite = (): { kind: OperationKind; input: Record<string, unknown> } | undefined => {
    const siteId = arg!;
    const reason = values.reason ? { reason: values.reason } : {};
    switch (command) {
      case 'suspend':
        return { kind: 'suspend', input: { siteId, ...reason } };
      case 'resume':
        return { kind: 'resume', input: { siteId } };
      case 'deprovision':
        return { kind: 'deprovision', input: { siteId, skipFinalBackup: values['skip-final-backup'] } };
      case 'plan':
        return { kind: 'change-plan', input: { siteId, plan: second } };
      case 'backup':
        return { kind: 'backup', input: { siteId, kind: 'on-demand', prune: !values['no-prune'] } };
      case 'restore':
        return { kind: 'restore', input: { siteId, backupId: second } };
      case 'deploy':
        return {
          kind: 'deploy',
          input: {
            siteId,
            ...(/^[0-9a-f]{40}$/.test(second!) ? { commit: second } : { ref: second }),
            ...reason,
          },
        };
      case 'rollback':
        return { kind: 'rollback', input: { siteId, release: second, ...reason } };
      case 'repair':
        return { kind: 'repair', input: { siteId, ...reason } };
      default:
        return undefined;
    }
  };
  const siteOperation = onSite();
  // every bad field named before anything connects
  if (siteOperation) parseOrThrow(OPERATIONS[siteOperation.kind].input, siteOperation.input, `qm ${command}`);

  const env = loadEnv(QmEnv);
  const codec = env.QM_CODEC_KEY ? new AesGcmCodec(env.QM_CODEC_KEY) : undefined;
  const { client, close } = await connectClient(env, codec);
  try {
    const startAndFollow = async (kind: OperationKind, siteId: string, input: unknown) => {
      const key = values.key ?? `cli-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const op = await startOperation(client, {
        kind,
        siteId,
        key,
        input,
        taskQueue: env.QM_TASK_QUEUE,
        triggeredBy: whoAmI(),
      });
      io.out(
        `${op.created ? 'started' : 'already started (same key)'} ${op.operationId}` +
          (op.queued ? `, queued behind ${op.behind}` : ''),
      );
      return values['no-follow'] ? EXIT.ok : follow(client, op.operationId, io);
    };

    if (siteOperation) return await startAndFollow(siteOperation.kind, arg!, siteOperation.input);
    switch (command) {
      case 'provision':
        return await startAndFollow('provision', String(spec!.siteId ?? ''), { site: spec });
      case 'status': {
        const siteId = siteIdArg(arg);
        const site = await readSite(client, siteId);
        if (!site) {
          io.err(`site ${siteId} is not known to the platform`);
          return EXIT.notFound;
        }
        for (const line of values.json ? [JSON.stringify(site, null, 2)] : siteLines(siteId, site))
          io.out(line);
        return EXIT.ok;
      }
      case 'op': {
        if (values.follow) return await follow(client, arg!, io);
        const view = await readOperation(client, OperationId.parse(arg));
        if (!view) {
          io.err(`no operation ${arg}`);
          return EXIT.notFound;
        }
        for (const line of values.json ? [JSON.stringify(view, null, 2)] : progressLines(undefined, view))
          io.out(line);
        return view.state === 'FAILED' || view.state === 'TERMINATED' || view.state === 'TIMED_OUT'
          ? EXIT.failed
          : EXIT.ok;
      }
      case 'sites': {
        const sites = await listSites(client);
        for (const line of values.json ? [JSON.stringify(sites, null, 2)] : sitesTable(sites)) io.out(line);
        return EXIT.ok;
      }
      case 'schedule': {
        const r =
          schedule!.kind === 'nightly'
            ? await ensureNightlyBackupSchedule(client, env.QM_TASK_QUEUE, schedule!.config)
            : await ensureFleetCheckSchedule(client, env.QM_TASK_QUEUE, schedule!.config);
        io.out(`schedule ${r.scheduleId}: ${r.action}`);
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command ${command} (qm --help)`);
    }
  } finally {
    await close();
  }
}

/** Run `qm` with these arguments; resolves to the exit status. */
export async function main(argv: string[] = process.argv.slice(2), io: Io = defaultIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (
      err instanceof UsageError ||
      err instanceof InvalidInputError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`qm: ${message}`);
      return EXIT.usage;
    }
    if (err instanceof SiteNotFoundError) {
      io.err(`qm: ${message}`);
      return EXIT.notFound;
    }
    if (err instanceof IdempotencyConflictError) {
      io.err(`qm: ${message}`);
      return EXIT.usage;
    }
    if (err instanceof NoWorkerError || /UNAVAILABLE|ECONNREFUSED|Failed to connect/i.test(message)) {
      io.err(`qm: Temporal or the worker did not answer: ${message}`);
      return EXIT.unavailable;
    }
    if (/Unknown encoding: binary\/encrypted/.test(message)) {
      io.err('qm: the payloads are encrypted: set QM_CODEC_KEY to the key the worker uses');
      return EXIT.usage;
    }
    io.err(`qm: ${message}`);
    return EXIT.failed;
  }
}

if (require.main === module) void main().then((code) => process.exit(code));
