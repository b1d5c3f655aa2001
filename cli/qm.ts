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
  OPERATIONS,
  readSite,
  SiteNotFoundError,
  startOperation,
  type OperationKind,
} from '../client/operations';
import { endedWell, readRun, type RunView } from '../client/runs';
import { ensureNightlyBackupSchedule, NightlyScheduleConfig } from '../client/schedules';
import { loadEnv, QmEnv } from '../config';
import { InvalidInputError, parseOrThrow } from '../schema/common';
import { SiteId, SiteSpec } from '../schema/site';
import { runLines, siteLines, sitesTable } from './render';

const USAGE = `qm: Quartermaster operations from the shell (the same client code as the billing API)

  qm provision <spec.json|->   provision a site: a SiteSpec, or provisionSite's own input
                               {"site": {…}, "triggeredBy": …} (JSON; - reads stdin)
  qm suspend <siteId> [--reason TEXT]
  qm resume <siteId>
  qm deprovision <siteId> [--skip-final-backup]
  qm plan <siteId> <starter|business|enterprise>
  qm backup <siteId> [--no-prune]
  qm restore <siteId> <backupId>
  qm deploy <siteId> <ref|commit> [--reason TEXT]   a branch, tag or commit (40 hex digits)
  qm rollback <siteId> <release> [--reason TEXT]    a release still kept on the app servers
  qm status <siteId> [--json]   the site's record, lock holder and queue
  qm op <workflowId> [--follow] [--json]
                                any operation: a site operation, a patch roll, a night of
                                backups, a fleet check (its progress while it runs, then how
                                it ended)
  qm sites [--json]             every site, from Temporal visibility
  qm schedule nightly [--hour 1] [--minute 0] [--window 240] [--per-db-host 2]
                                make the nightly backups' Schedule exist as given (UTC; a paused
                                schedule stays paused)

Operations print their id and follow it to the end (--no-follow: just start it). --key K sets the
idempotency key (default: a fresh one); running the same command with the same key never starts
a second operation. Operations qm starts are recorded as triggered by qm:<user> (QM_USER, else the
user who ran sudo, else the OS user).

Environment: TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE, QM_TASK_QUEUE (quartermaster),
QM_CODEC_KEY (the worker's payload key), QM_USER. Exit status: 0 done, 1 the operation failed (for
qm op also: a fleet check with a failed host, a night with a failed backup, a patch roll that did
not complete every host), 2 bad usage or input, 3 not found, 4 Temporal or the worker did not
answer.`;

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
  status: { site: true, second: undefined },
  op: { site: false, second: undefined },
  sites: { site: false, second: undefined },
  schedule: { site: false, second: undefined },
} as const;

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, unavailable: 4 } as const;

export class UsageError extends Error {}

export interface Io {
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

/** `qm:<user>`: QM_USER (checked), else the user who ran sudo, else the OS user (made safe). */
export function whoAmI(env: NodeJS.ProcessEnv = process.env): string {
  const given = QmEnv.shape.QM_USER.safeParse(env.QM_USER);
  if (!given.success) throw new UsageError(`bad QM_USER: ${given.error.issues[0]!.message}`);
  const name = given.data ?? (env.SUDO_USER || os.userInfo().username || 'unknown');
  return `qm:${name.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 60)}`;
}

function readJson(path: string, io: Io): unknown {
  const text = path === '-' ? io.readStdin() : fs.readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path === '-' ? 'stdin' : path} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * `qm provision`'s file: a SiteSpec, or provisionSite's own input `{"site": …, "triggeredBy": …}`
 * (what the Web UI takes, as the docs show it). A SiteSpec has no `site` field, so the two cannot
 * be mistaken for each other. Every bad field is named; triggeredBy becomes qm's own.
 */
function readProvision(
  path: string | undefined,
  io: Io,
  triggeredBy: string,
): { siteId: string; input: Record<string, unknown> } {
  if (!path) throw new UsageError('qm provision <spec.json|->');
  const given = readJson(path, io);
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    throw new UsageError('the spec must be a JSON object: a SiteSpec, or {"site": <SiteSpec>}');
  const wrapped = 'site' in given;
  const theirs = (given as { triggeredBy?: unknown }).triggeredBy;
  if (wrapped && theirs !== undefined && theirs !== triggeredBy)
    io.err(`qm: recording the operation as triggered by ${triggeredBy}, not ${JSON.stringify(theirs)}`);
  const input = wrapped
    ? { ...(given as Record<string, unknown>), triggeredBy }
    : { site: given, triggeredBy };
  const parsed = parseOrThrow(
    OPERATIONS.provision.input,
    input,
    wrapped ? 'provisionSite input' : 'site spec',
  ) as { site: SiteSpec };
  return { siteId: parsed.site.siteId, input };
}

function siteIdArg(value: string | undefined): string {
  const p = SiteId.safeParse(value);
  if (!p.success)
    throw new UsageError(`bad site id ${JSON.stringify(value ?? '')}: ${p.error.issues[0]!.message}`);
  return p.data;
}

/** `qm schedule nightly`'s settings, checked (unset options take the schedule's defaults). */
function nightlySchedule(
  kind: string | undefined,
  values: { hour?: string; minute?: string; window?: string; 'per-db-host'?: string },
): NightlyScheduleConfig {
  if (kind !== 'nightly')
    throw new UsageError('qm schedule nightly [--hour H] [--minute M] [--window MINUTES] [--per-db-host N]');
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

/** A workflow id as `qm op` takes it: any id Temporal could hold, nothing that is not printable. */
function workflowIdArg(value: string | undefined): string {
  if (!value || value.length > 255 || !/^[\x21-\x7e]+$/.test(value))
    throw new UsageError(
      `bad workflow id ${JSON.stringify(value ?? '')}: 1-255 printable characters, no spaces`,
    );
  return value;
}

/** Follow any run until it ends, printing what changes; the exit status says how it ended. */
export async function follow(client: Client, id: string, io: Io, intervalMs = 1000): Promise<number> {
  let prev: RunView | undefined;
  for (;;) {
    const run = await readRun(client, workflowIdArg(id));
    if (!run) {
      io.err(`no operation ${id}`);
      return EXIT.notFound;
    }
    for (const line of runLines(prev, run)) io.out(line);
    const well = endedWell(run);
    if (well !== undefined) return well ? EXIT.ok : EXIT.failed;
    prev = run;
    await sleep(intervalMs);
  }
}

/** What a command line asks for, checked in full before anything connects. */
export type Command =
  | { command: 'help'; exit: number }
  | {
      command: 'start';
      kind: OperationKind;
      siteId: string;
      /** The workflow's input, checked against its schema (triggeredBy is qm's). */
      input: Record<string, unknown>;
      key?: string;
      follow: boolean;
    }
  | { command: 'status'; siteId: string; json: boolean }
  | { command: 'op'; id: string; follow: boolean; json: boolean }
  | { command: 'sites'; json: boolean }
  | { command: 'schedule'; config: NightlyScheduleConfig };

/**
 * Parse a qm command line: every argument checked against the workflows' own schemas (a typo
 * never reaches Temporal), files read, nothing connected. Throws a usage error naming what is wrong.
 */
export function parseCommand(
  argv: string[],
  io: Io = defaultIo,
  env: NodeJS.ProcessEnv = process.env,
): Command {
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
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, arg, second, ...extra] = positionals;
  if (values.help || !command) {
    io.out(USAGE);
    return { command: 'help', exit: values.help ? EXIT.ok : EXIT.usage };
  }
  if (!(command in COMMANDS)) throw new UsageError(`unknown command ${command} (qm --help)`);
  const shape = COMMANDS[command as keyof typeof COMMANDS];
  const unexpected = shape.second ? extra : [second, ...extra].filter((a) => a !== undefined);
  if (unexpected.length) throw new UsageError(`unexpected arguments: ${unexpected.join(' ')}`);
  if (shape.site) siteIdArg(arg);
  if (shape.second && !second) throw new UsageError(`qm ${command} <siteId> <${shape.second}>`);
  if (values.key !== undefined) {
    const k = IdempotencyKey.safeParse(values.key);
    if (!k.success) throw new UsageError(`bad --key: ${k.error.issues[0]!.message}`);
  }
  const json = values.json;
  switch (command) {
    case 'op':
      return { command: 'op', id: workflowIdArg(arg), follow: values.follow, json };
    case 'status':
      return { command: 'status', siteId: siteIdArg(arg), json };
    case 'sites':
      return { command: 'sites', json };
    case 'schedule':
      return { command: 'schedule', config: nightlySchedule(arg, values) };
  }

  // the operations qm starts, with their input (checked against the workflow's schema here)
  const triggeredBy = whoAmI(env);
  const start = (kind: OperationKind, siteId: string, input: Record<string, unknown>): Command => {
    parseOrThrow(OPERATIONS[kind].input, input, `qm ${command}`); // every bad field named
    return { command: 'start', kind, siteId, input, key: values.key, follow: !values['no-follow'] };
  };
  if (command === 'provision') {
    const p = readProvision(arg, io, triggeredBy);
    return start('provision', p.siteId, p.input);
  }
  const siteId = arg!;
  const reason = values.reason ? { reason: values.reason } : {};
  const who = { siteId, triggeredBy };
  switch (command) {
    case 'suspend':
      return start('suspend', siteId, { ...who, ...reason });
    case 'resume':
      return start('resume', siteId, who);
    case 'deprovision':
      return start('deprovision', siteId, { ...who, skipFinalBackup: values['skip-final-backup'] });
    case 'plan':
      return start('change-plan', siteId, { ...who, plan: second });
    case 'backup':
      return start('backup', siteId, { ...who, kind: 'on-demand', prune: !values['no-prune'] });
    case 'restore':
      return start('restore', siteId, { ...who, backupId: second });
    case 'deploy':
      return start('deploy', siteId, {
        ...who,
        ...(/^[0-9a-f]{40}$/.test(second!) ? { commit: second } : { ref: second }),
        ...reason,
      });
    case 'rollback':
      return start('rollback', siteId, { ...who, release: second, ...reason });
    default:
      throw new UsageError(`unknown command ${command} (qm --help)`);
  }
}

async function run(argv: string[], io: Io): Promise<number> {
  const cmd = parseCommand(argv, io);
  if (cmd.command === 'help') return cmd.exit;

  const env = loadEnv(QmEnv);
  const codec = env.QM_CODEC_KEY ? new AesGcmCodec(env.QM_CODEC_KEY) : undefined;
  const { client, close } = await connectClient(env, codec);
  try {
    switch (cmd.command) {
      case 'start': {
        const key = cmd.key ?? `cli-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
        const op = await startOperation(client, {
          kind: cmd.kind,
          siteId: cmd.siteId,
          key,
          input: cmd.input,
          taskQueue: env.QM_TASK_QUEUE,
          triggeredBy: cmd.input.triggeredBy as string,
        });
        io.out(
          `${op.created ? 'started' : 'already started (same key)'} ${op.operationId}` +
            (op.queued ? `, queued behind ${op.behind}` : ''),
        );
        return cmd.follow ? await follow(client, op.operationId, io) : EXIT.ok;
      }
      case 'status': {
        const site = await readSite(client, cmd.siteId);
        if (!site) {
          io.err(`site ${cmd.siteId} is not known to the platform`);
          return EXIT.notFound;
        }
        for (const line of cmd.json ? [JSON.stringify(site, null, 2)] : siteLines(cmd.siteId, site))
          io.out(line);
        return EXIT.ok;
      }
      case 'op': {
        if (cmd.follow) return await follow(client, cmd.id, io);
        const view = await readRun(client, cmd.id);
        if (!view) {
          io.err(`no operation ${cmd.id}`);
          return EXIT.notFound;
        }
        for (const line of cmd.json ? [JSON.stringify(view, null, 2)] : runLines(undefined, view))
          io.out(line);
        return endedWell(view) === false ? EXIT.failed : EXIT.ok;
      }
      case 'sites': {
        const sites = await listSites(client);
        for (const line of cmd.json ? [JSON.stringify(sites, null, 2)] : sitesTable(sites)) io.out(line);
        return EXIT.ok;
      }
      case 'schedule': {
        const r = await ensureNightlyBackupSchedule(client, env.QM_TASK_QUEUE, cmd.config);
        io.out(`schedule ${r.scheduleId}: ${r.action}`);
        return EXIT.ok;
      }
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
