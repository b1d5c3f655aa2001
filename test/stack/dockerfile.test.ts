import fs from 'node:fs';
import path from 'node:path';

/**
 * deploy/Dockerfile, read statically (no registry here, so no build): multi-stage, production
 * dependencies only in the image, compiled JS, tini as PID 1, a non-root user, a healthcheck.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const text = fs.readFileSync(path.join(ROOT, 'deploy', 'Dockerfile'), 'utf8');

interface Stage {
  name: string;
  from: string;
  lines: string[];
}

/** Instructions (continuations joined, comments dropped), grouped by stage. */
function stages(): { args: Map<string, string>; stages: Stage[] } {
  const args = new Map<string, string>();
  const out: Stage[] = [];
  const joined = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const raw of joined) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ from: from[1]!, name: from[2] ?? String(out.length), lines: [] });
    else if (out.length === 0 && /^ARG\s+(\w+)=(\S+)/.test(line)) {
      const [, k, v] = /^ARG\s+(\w+)=(\S+)/.exec(line)!;
      args.set(k!, v!);
    } else out.at(-1)?.lines.push(line);
  }
  return { args, stages: out };
}

const { args, stages: all } = stages();
const byName = (n: string) => all.find((s) => s.name === n)!;
const has = (s: Stage, re: RegExp) => s.lines.some((l) => re.test(l));

test('three stages: build (dev dependencies, npm run build), deps (production only), runtime last', () => {
  expect(all.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
  expect(has(byName('build'), /^RUN npm ci\b(?!.*--omit=dev)/)).toBe(true);
  expect(has(byName('build'), /^RUN npm run build$/)).toBe(true);
  expect(has(byName('deps'), /^RUN npm ci --omit=dev\b/)).toBe(true);
  // the runtime takes only production node_modules and the compiled dist from the other stages
  const copies = byName('runtime').lines.filter((l) => l.startsWith('COPY'));
  expect(
    copies
      .filter((l) => l.includes('--from='))
      .map((l) => /--from=(\S+).*\s(\S+)\s+(\S+)$/.exec(l)!.slice(1)),
  ).toEqual([
    ['deps', '/app/node_modules', './node_modules'],
    ['build', '/src/dist', './dist'],
  ]);
  expect(copies.filter((l) => !l.includes('--from=')).every((l) => /package\.json/.test(l))).toBe(true);
  expect(has(byName('runtime'), /^RUN npm/)).toBe(false);
});

test('a pinned glibc Node base of the major version package.json asks for', () => {
  const image = args.get('NODE_IMAGE')!;
  expect(image).toMatch(/^node:\d+\.\d+\.\d+-bookworm-slim$/);
  for (const s of all) expect(s.from).toBe('${NODE_IMAGE}');
  const engines = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines.node as string;
  expect(image.split(':')[1]!.split('.')[0]).toBe(/\d+/.exec(engines)![0]);
});

test('runtime: non-root user, tini as PID 1 running node, the worker by default, a healthcheck', () => {
  const runtime = byName('runtime');
  const user = runtime.lines.filter((l) => l.startsWith('USER ')).at(-1);
  expect(user).toBe('USER node');
  // USER comes before the process starts (nothing after it runs as root)
  const idx = runtime.lines.indexOf(user!);
  expect(runtime.lines.slice(idx).some((l) => l.startsWith('RUN '))).toBe(false);
  expect(has(runtime, /apt-get install .*\btini\b/)).toBe(true);
  expect(runtime.lines).toContain('ENTRYPOINT ["/usr/bin/tini", "--", "node"]');
  expect(runtime.lines).toContain('CMD ["dist/workers/main.js"]');
  expect(has(runtime, /^HEALTHCHECK .*CMD \["node", "dist\/workers\/healthcheck\.js"\]$/)).toBe(true);
  expect(has(runtime, /^ENV NODE_ENV=production QM_METRICS_HOST=0\.0\.0\.0 QM_METRICS_PORT=9464$/)).toBe(
    true,
  );
});

test('the build stage copies everything tsconfig.build.json compiles, and the sources those copies name exist', () => {
  const build = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8'))
    .include as string[];
  const copied = byName('build')
    .lines.filter((l) => l.startsWith('COPY '))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  for (const dir of [...build, 'profiles', 'deploy/build.ts', 'tsconfig.json', 'tsconfig.build.json'])
    expect([dir, copied.includes(dir)]).toEqual([dir, true]);
  for (const src of copied) expect([src, fs.existsSync(path.join(ROOT, src))]).toEqual([src, true]);
});

test('.dockerignore keeps secrets, local env files and data out of the build context', () => {
  const ignored = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
  for (const p of ['.env', '*.env', 'deploy/secrets', 'data', 'node_modules', 'dist', '.git'])
    expect([p, ignored.includes(p)]).toEqual([p, true]);
});
