import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * `npm run build [-- --out DIR]` (default dist/): what the images run, plain JS.
 *  1. tsc -p tsconfig.build.json (no tests, no benchmarks);
 *  2. the runtime files next to the code that tsc does not copy (profiles/, JSON data, and the
 *     scripts the activities read beside their modules: every activities/<group>/*.sh, see
 *     activities/ssh/remoteScript.ts, and activities/git/post-receive.pl);
 *  3. the workflow bundle, dist/workflow-bundle.js, built once here with the sandbox interceptors
 *     (workers/workflowInterceptors.ts), so a worker starts without webpack and every worker of a
 *     release runs byte-identical workflow code. workers/main.ts loads it when it exists.
 */
const ROOT = path.resolve(__dirname, '..');
const SOURCE_DIRS = ['protocol', 'workflows', 'activities', 'client', 'config', 'workers', 'schema', 'api'];

function outDir(argv: string[]): string {
  const i = argv.indexOf('--out');
  return path.resolve(i >= 0 && argv[i + 1] ? argv[i + 1]! : path.join(ROOT, 'dist'));
}

/** Every non-TypeScript file under `dir` (relative paths). */
function assets(dir: string): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...assets(rel));
    else if (!entry.name.endsWith('.ts')) found.push(rel);
  }
  return found;
}

async function main() {
  const out = outDir(process.argv.slice(2));
  const t0 = Date.now();
  fs.rmSync(out, { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', out],
    { stdio: 'inherit', cwd: ROOT },
  );
  for (const rel of [...SOURCE_DIRS.flatMap(assets), ...assets('profiles')]) {
    fs.mkdirSync(path.dirname(path.join(out, rel)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, rel), path.join(out, rel));
  }
  const { code } = await bundleWorkflowCode({
    // from the sources, as the tests bundle them (node_modules resolve from the project root)
    workflowsPath: path.join(ROOT, 'workflows', 'index.ts'),
    workflowInterceptorModules: [path.join(ROOT, 'workers', 'workflowInterceptors.ts')],
    // failures raised in workflow code keep their messages in (encrypted) payloads
    failureConverterPath: path.join(ROOT, 'client', 'failureConverter.ts'),
    // values that reached the worker unencrypted are noted, and such workflows refused
    payloadConverterPath: path.join(ROOT, 'client', 'payloadConverter.ts'),
    logger: { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} },
  });
  fs.writeFileSync(path.join(out, 'workflow-bundle.js'), code);
  console.log(`[build] ${path.relative(process.cwd(), out) || '.'} in ${Date.now() - t0} ms`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
