import path from 'node:path';
import fs from 'node:fs';

/**
 * `npm run bench -- NAME [args]` runs bench/NAME.ts against the real test bed. Each benchmark
 * prints what it measured for a person and ends with one line of JSON holding its figures.
 */
const name = process.argv[2];
const file = name ? path.join(__dirname, `${name}.ts`) : '';
if (!name || !/^[a-z0-9-]+$/.test(name) || !fs.existsSync(file)) {
  const available = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f))
    .map((f) => f.replace(/\.ts$/, ''));
  console.error(`usage: npm run bench -- NAME   (one of: ${available.join(', ')})`);
  process.exit(2);
}
process.argv.splice(2, 1);
require(file);
