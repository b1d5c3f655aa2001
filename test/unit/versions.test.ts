import fs from 'node:fs';
import path from 'node:path';
import { PATCHES } from '../../workflows/versions';

const WORKFLOWS = path.join(__dirname, '..', '..', 'workflows');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    // the ledger itself only talks about patched()
    return e.name.endsWith('.ts') && p !== path.join(WORKFLOWS, 'versions.ts') ? [p] : [];
  });
}

/** Every id given to patched()/deprecatePatch() in workflows/, by the files that give it. */
function idsInCode(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sources(WORKFLOWS)) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\b(?:patched|deprecatePatch)\(\s*(['"`])([^'"`]+)\1\s*\)/g)) {
      const rel = path.relative(WORKFLOWS, file);
      found.set(m[2]!, [...new Set([...(found.get(m[2]!) ?? []), rel])]);
    }
    // an id passed through a constant cannot be checked against the ledger: forbid it
    expect({ file, indirect: /\b(?:patched|deprecatePatch)\(\s*[A-Za-z_]/.test(text) }).toEqual({
      file,
      indirect: false,
    });
  }
  return found;
}

test('every patched()/deprecatePatch() id in workflows/ is in the ledger, and every ledger id is in the code', () => {
  const inCode = idsInCode();
  expect([...inCode.keys()].sort()).toEqual(PATCHES.map((p) => p.id).sort());
  for (const p of PATCHES) expect(inCode.get(p.id)?.sort()).toEqual([...p.files].sort());
});

test('the ledger names each id once, with its release', () => {
  expect(new Set(PATCHES.map((p) => p.id)).size).toBe(PATCHES.length);
  for (const p of PATCHES) expect(p.since).toMatch(/^v?\d+\.\d+\.\d+$/);
});
