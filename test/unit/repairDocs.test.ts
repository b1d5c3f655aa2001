import fs from 'node:fs';
import path from 'node:path';
import { CheckFleetInput } from '../../protocol/checkFleet';
import { RepairSiteInput } from '../../protocol/operations';

/**
 * The Web UI inputs docs/platform.md gives for the fleet check and the repair are inputs those
 * workflows accept as written (the bed tests run the same shapes on their own sites).
 */
const platformDoc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'platform.md'), 'utf8');

/** The JSON objects in backquotes on the table row of `workflowType`. */
function documentedInputs(workflowType: string): unknown[] {
  const row = platformDoc.split('\n').find((l) => l.startsWith(`| \`${workflowType}\``));
  if (!row) throw new Error(`docs/platform.md has no row for ${workflowType}`);
  return [...row.matchAll(/`(\{[^`]*\})`/g)].map((m) => JSON.parse(m[1]!) as unknown);
}

test.each([
  ['checkFleet', CheckFleetInput, 3],
  ['repairSite', RepairSiteInput, 1],
] as const)('docs/platform.md: every %s input shown is one the workflow accepts', (type, schema, count) => {
  const inputs = documentedInputs(type);
  expect(inputs).toHaveLength(count);
  for (const input of inputs) expect(schema.safeParse(input).error).toBeUndefined();
});
