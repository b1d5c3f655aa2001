import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { EXIT, main, parseCommand } from '../../cli/qm';
import { OPERATIONS, readSite } from '../../client/operations';
import { NIGHTLY_SCHEDULE_ID } from '../../client/schedules';
import {
  BackupSiteInput,
  ChangePlanInput,
  CheckFleetInput,
  DeployReleaseInput,
  DeprovisionSiteInput,
  NightlyBackupsInput,
  PatchRollInput,
  ProvisionSiteInput,
  RestoreSiteInput,
  ResumeSiteInput,
  RollbackSiteInput,
  SuspendSiteInput,
} from '../../protocol';
import { SECRET, startApi, withApiWorker, type Api } from '../api/harness';
import { openBed, type Bed } from '../support/bed';

/**
 * Every example in docs/*.md, found by its marker (docs/README.md, "Examples are run"), is run as
 * written: the Web UI's workflow inputs are parsed by their workflow's own schema (protocol/) and
 * started on the bed, `qm …` lines are parsed by qm's own parser and run on the bed, the API client
 * snippets (TypeScript, openssl + curl) run against the API on the bed. What the bed cannot give
 * cheaply is only parsed, and NOT_STARTED / QM_NOT_RUN say why. A code block without a marker
 * fails, so a new example cannot slip past.
 *
 * Together they are the demo site `acme`'s life: provisioned from the Web UI's input, then each
 * Web UI input, the API snippets, and the qm lines in the order the pages give them, ending with
 * `qm deprovision acme`.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const DOCS = path.join(ROOT, 'docs');
const SITE = 'acme';
/** The Web UI provision's workflow id, as platform.md suggests it (`qm op` in api.md reads it). */
const PROVISION_ID = 'provision:acme:ops-jane-1';

const INPUTS: Record<string, z.ZodType> = {
  provisionSite: ProvisionSiteInput,
  deprovisionSite: DeprovisionSiteInput,
  suspendSite: SuspendSiteInput,
  resumeSite: ResumeSiteInput,
  changePlan: ChangePlanInput,
  backupSite: BackupSiteInput,
  restoreSite: RestoreSiteInput,
  deployRelease: DeployReleaseInput,
  rollbackSite: RollbackSiteInput,
  checkFleet: CheckFleetInput,
  nightlyBackups: NightlyBackupsInput,
  patchRoll: PatchRollInput,
};

/** Web UI inputs only parsed, never started here, and why. */
const NOT_STARTED: Record<string, (input: Record<string, unknown>, name?: string) => string | undefined> = {
  provisionSite: (_i, name) =>
    name === 'demo' ? undefined : "the production profile's images are not on the bed",
  restoreSite: () =>
    "its backup id is an example; a restore takes one of the site's own (test/backup restores)",
  deployRelease: () => "needs a commit pushed to the site's repository (test/deploy pushes and deploys)",
  patchRoll: () => 'patches the hosts with apt-get (test/patch runs rolls with a harmless command)',
  deprovisionSite: () => '`qm deprovision acme` (api.md) ends the site instead: one end per life',
  nightlyBackups: (i) =>
    i.sites ? undefined : "backs up every active site on the server, not only the examples' own",
};

/** qm commands only parsed, never run here, and why. */
const QM_NOT_RUN: Record<string, string> = {
  restore: "its backup id is an example; a restore takes one of the site's own (test/backup restores)",
  deploy: "needs a commit pushed to the site's repository (test/deploy pushes and deploys)",
};

interface Block {
  file: string;
  line: number;
  /** The marker before it: `example: …` / `not-an-example: …`, or undefined. */
  marker?: string;
  kind: 'fenced' | 'indented' | 'table';
  lines: string[];
}

/** The code blocks and tables of a page, each with the HTML comment before it (if any). */
function blocksOf(file: string): Block[] {
  const text = fs.readFileSync(path.join(DOCS, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  let lastNonBlank = '';
  let lastNonBlankIndex = -1;
  for (let i = 0; i < text.length; i++) {
    const line = text[i]!;
    const before = lastNonBlank;
    const marker = /^<!-- ((?:example|not-an-example): .+?) -->$/.exec(before)?.[1];
    const start = (kind: Block['kind'], end: number, lines: string[]) => {
      blocks.push({ file, line: i + 1, marker, kind, lines });
      i = end;
      lastNonBlank = text[end]!;
      lastNonBlankIndex = end;
    };
    if (/^```/.test(line)) {
      let end = i + 1;
      while (end < text.length && !/^```\s*$/.test(text[end]!)) end++;
      start('fenced', end, text.slice(i + 1, end));
      continue;
    }
    const previousIsBlank = i > 0 && text[i - 1]!.trim() === '';
    const inList = /^(\s*[-*] |\s*\d+\. |\s{2,}\S)/.test(before) && lastNonBlankIndex >= 0;
    if (/^ {4}\S/.test(line) && previousIsBlank && !inList) {
      let end = i;
      while (end + 1 < text.length && (/^ {4}/.test(text[end + 1]!) || text[end + 1]!.trim() === '')) end++;
      while (text[end]!.trim() === '') end--;
      start(
        'indented',
        end,
        text.slice(i, end + 1).map((l) => l.slice(4)),
      );
      continue;
    }
    if (/^\|/.test(line) && !/^\|/.test(before)) {
      let end = i;
      while (end + 1 < text.length && /^\|/.test(text[end + 1]!)) end++;
      start('table', end, text.slice(i, end + 1));
      continue;
    }
    if (line.trim() !== '') {
      lastNonBlank = line;
      lastNonBlankIndex = i;
    }
  }
  return blocks;
}

const pages = fs
  .readdirSync(DOCS)
  .filter((f) => f.endsWith('.md'))
  .sort();
const blocks = pages.flatMap(blocksOf);
const marked = (kind: string) => blocks.filter((b) => b.marker?.split(/\s+/)[1] === kind);
const where = (b: Block) => `docs/${b.file}:${b.line}`;

interface WorkflowInput {
  at: string;
  workflowType: string;
  name?: string;
  text: string;
  input: Record<string, unknown>;
}

/** The Web UI inputs: each `{…}` span of a workflow-inputs table, each workflow-input block. */
const workflowInputs: WorkflowInput[] = [
  ...marked('workflow-inputs').flatMap((b) =>
    b.lines.slice(2).flatMap((row) => {
      const [, typeCell = '', inputCell = ''] = row.split('|');
      const workflowType = /`(\w+)`/.exec(typeCell)?.[1] ?? `(no type in ${typeCell.trim()})`;
      return [...inputCell.matchAll(/`(\{[^`]*\})`/g)].map((m) => ({
        at: where(b),
        workflowType,
        text: m[1]!,
        input: JSON.parse(m[1]!) as Record<string, unknown>,
      }));
    }),
  ),
  ...marked('workflow-input').map((b) => {
    const [, , workflowType = '', name] = b.marker!.split(/\s+/);
    const text = b.lines.join('\n');
    return { at: where(b), workflowType, name, text, input: JSON.parse(text) as Record<string, unknown> };
  }),
];

/** A shell line's words, as sh splits them (quotes, and # starting a comment). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '#' && !inWord) break;
    else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (inWord) words.push(word);
  return words;
}

/** Every `qm …` line of the qm blocks, in page order. */
const qmLines = marked('qm').flatMap((b) =>
  b.lines
    .map((text, i) => ({ at: `docs/${b.file}:${b.line + 1 + i}`, text, words: shellWords(text) }))
    .filter((l) => l.words.length),
);

const demoInput = () => {
  const demo = workflowInputs.find((w) => w.workflowType === 'provisionSite' && w.name === 'demo');
  if (!demo) throw new Error('platform.md has no `workflow-input provisionSite demo` example');
  return demo;
};

/** A directory holding spec.json as api.md says: provisionSite's input as the Web UI takes it. */
function specDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-docs-'));
  fs.writeFileSync(path.join(dir, 'spec.json'), demoInput().text);
  return dir;
}

/** Run `fn` in `dir` (qm reads spec.json from where it runs). */
async function inDir<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(cwd);
  }
}

/** Examples another test runs as written (it finds them by their marker): which test. */
const RUN_ELSEWHERE: Record<string, string> = {
  'first-day-provision': 'test/platform/firstDay.test.ts',
  'first-day-push': 'test/platform/firstDay.test.ts',
  'first-day-codec': 'test/platform/firstDay.test.ts',
};

test('each example run by another test is named by that test', () => {
  for (const [kind, file] of Object.entries(RUN_ELSEWHERE))
    expect({
      kind,
      named: fs.readFileSync(path.join(__dirname, '..', '..', file), 'utf8').includes(kind),
    }).toEqual({
      kind,
      named: true,
    });
});

describe('the examples are marked', () => {
  test('every code block in docs/ is an example or says it is not one', () => {
    const unmarked = blocks.filter((b) => b.kind !== 'table' && !b.marker).map(where);
    expect(unmarked).toEqual([]);
  });

  test('every marker is one the test knows', () => {
    const kinds = [
      'workflow-inputs',
      'workflow-input',
      'qm',
      'api-client-ts',
      'api-client-sh',
      'not-run',
      ...Object.keys(RUN_ELSEWHERE),
    ];
    const unknown = blocks
      .filter((b) => b.marker?.startsWith('example:') && !kinds.includes(b.marker.split(/\s+/)[1]!))
      .map((b) => `${where(b)}: ${b.marker}`);
    expect(unknown).toEqual([]);
    expect(marked('not-run').every((b) => /\(.+\)/.test(b.marker!))).toBe(true); // each says why
  });

  test('there is something to run: the inputs, the qm lines, both API snippets', () => {
    expect(workflowInputs.length).toBeGreaterThanOrEqual(14);
    expect(new Set(workflowInputs.map((w) => w.workflowType))).toEqual(new Set(Object.keys(INPUTS)));
    expect(qmLines.length).toBeGreaterThanOrEqual(12);
    expect(marked('api-client-ts')).toHaveLength(1);
    expect(marked('api-client-sh')).toHaveLength(1);
  });
});

describe('the examples parse', () => {
  test.each(workflowInputs.map((w) => [`${w.workflowType} ${w.name ?? ''} ${w.text}`, w] as const))(
    'Web UI input %s: its workflow takes it',
    (_name, w) => {
      const schema = INPUTS[w.workflowType];
      expect(schema).toBeDefined();
      const parsed = schema!.safeParse(w.input);
      expect(parsed.error?.issues ?? []).toEqual([]);
    },
  );

  test('no time in an example is already past (a maintenance window that closed would refuse every host)', () => {
    const times = workflowInputs.flatMap((w) =>
      [...w.text.matchAll(/"(\d{4}-\d{2}-\d{2}T[^"]+)"/g)].map((m) => ({ at: w.at, time: m[1]! })),
    );
    expect(times.length).toBeGreaterThan(0);
    const soon = Date.now() + 365 * 24 * 3600 * 1000;
    expect(times.filter((t) => Date.parse(t.time) < soon)).toEqual([]);
  });

  test("each provisionSite example's profile exists", () => {
    for (const w of workflowInputs.filter((x) => x.workflowType === 'provisionSite')) {
      const profile = (w.input.site as { profile: string }).profile;
      expect(fs.existsSync(path.join(ROOT, 'profiles', `${profile}.yaml`))).toBe(true);
    }
  });

  test("every qm line parses with qm's own parser", async () => {
    const dir = specDir();
    const results = await inDir(dir, () =>
      qmLines.map((l) => {
        expect(l.words[0]).toBe('qm');
        try {
          const cmd = parseCommand(
            l.words.slice(1),
            { out: () => {}, err: () => {}, readStdin: () => '' },
            {
              QM_USER: 'jane',
            },
          );
          return `${l.text}: ${cmd.command}`;
        } catch (err) {
          return `${l.at} ${l.text}: ${(err as Error).message}`;
        }
      }),
    );
    expect(results.filter((r) => !/: (start|op|status|sites|schedule)$/.test(r))).toEqual([]);
  });
});

describe('the examples run on the bed', () => {
  let bed: Bed;
  let api: Api;
  beforeAll(async () => {
    bed = await openBed();
    api = await startApi(bed.env);
  });
  afterAll(async () => {
    await api?.client.schedule
      .getHandle(NIGHTLY_SCHEDULE_ID)
      .delete()
      .catch(() => undefined);
    await api?.close();
    await bed?.close();
  });

  /** qm as the docs run it, in-process (the bin calls the same main()), in the directory of spec.json. */
  async function qm(words: string[], dir: string) {
    const out: string[] = [];
    const env = {
      TEMPORAL_ADDRESS: process.env.QM_TEST_TEMPORAL_ADDRESS,
      QM_TASK_QUEUE: api.taskQueue,
      QM_CODEC_KEY: api.codecKey,
      QM_USER: 'jane',
    };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const code = await inDir(dir, () =>
        main(words.slice(1), { out: (l) => out.push(l), err: (l) => out.push(l), readStdin: () => '' }),
      );
      return { code, out: out.join('\n') };
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  }

  /** A snippet run from the repository root, against this API. */
  function snippet(command: string, args: string[]): Promise<{ code: number; out: string }> {
    return new Promise((resolve) =>
      execFile(
        command,
        args,
        {
          cwd: ROOT,
          env: { ...process.env, QM_API_URL: api.url, QM_API_SECRET: SECRET },
          timeout: 60_000,
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
      ),
    );
  }

  const operationOf = (out: string) => /"operationId":\s*"([^"]+)"|operationId: '([^']+)'/.exec(out);

  test('acme: the Web UI inputs, the API snippets and the qm lines, in order', async () => {
    const dir = specDir();
    const skipped: string[] = [];
    await withApiWorker(bed, api, async () => {
      try {
        // the Web UI: the demo provision first (by the id platform.md suggests), then the rest
        const start = async (w: WorkflowInput, workflowId: string) =>
          api.client.workflow.execute(w.workflowType, {
            taskQueue: api.taskQueue,
            workflowId,
            args: [w.input],
          });
        expect(await start(demoInput(), PROVISION_ID)).toMatchObject({ siteId: SITE, state: 'active' });
        let n = 0;
        for (const w of workflowInputs) {
          if (w === demoInput()) continue;
          const why = NOT_STARTED[w.workflowType]?.(w.input, w.name);
          if (why) {
            skipped.push(`${w.at} ${w.workflowType} ${w.text}: ${why}`);
            continue;
          }
          const kind = Object.entries(OPERATIONS).find(([, o]) => o.workflowType === w.workflowType)?.[0];
          const id = kind ? `${kind}:${SITE}:docs-${++n}` : `${w.workflowType}-docs-${++n}`;
          const result = (await start(w, id)) as Record<string, unknown>;
          if (w.workflowType === 'checkFleet') expect(result.failed).toEqual([]);
          if (w.workflowType === 'nightlyBackups') expect(result.succeeded).toEqual([SITE]);
        }

        // the API snippets: a suspend (TypeScript) and a resume (openssl + curl)
        const ts = await snippet(process.execPath, [
          require.resolve('tsx/cli'),
          '-e',
          marked('api-client-ts')[0]!.lines.join('\n'),
        ]);
        expect(ts.out).toMatch(/^202 /);
        const suspend = operationOf(ts.out);
        expect(suspend).not.toBeNull();
        await api.client.workflow.getHandle(suspend![1] ?? suspend![2]!).result();
        const sh = await snippet('bash', ['-c', marked('api-client-sh')[0]!.lines.join('\n')]);
        const resume = operationOf(sh.out);
        expect({ code: sh.code, resume: resume?.[1] }).toEqual({
          code: 0,
          resume: expect.stringMatching(/^resume:acme:/),
        });
        await api.client.workflow.getHandle(resume![1]!).result();

        // qm, line by line
        for (const l of qmLines) {
          const why = QM_NOT_RUN[l.words[1]!];
          if (why) {
            skipped.push(`${l.at} ${l.text}: ${why}`);
            continue;
          }
          const r = await qm(l.words, dir);
          if (r.code !== EXIT.ok) throw new Error(`${l.at}: \`${l.text}\` exited ${r.code}:\n${r.out}`);
        }
        expect((await readSite(api.client, SITE))?.view?.record.state).toBe('deleted');
      } finally {
        const site = await readSite(api.client, SITE).catch(() => undefined);
        if (site?.view && site.view.record.state !== 'deleted')
          await api.client.workflow.execute('deprovisionSite', {
            taskQueue: api.taskQueue,
            workflowId: `deprovision:${SITE}:docs-cleanup`,
            args: [{ siteId: SITE, skipFinalBackup: true }],
          });
      }
    });
    console.log(`docs examples parsed but not run here:\n${skipped.join('\n')}`);
  }, 300_000);
});
