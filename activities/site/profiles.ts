import fs from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { describeIssues } from '../../schema/common';
import { Profile } from '../../schema/profile';
import { failure, FailureType } from '../errors';

/** profiles/ at the repository root: profiles are data, shipped with the code that reads them. */
export const DEFAULT_PROFILES_DIR = path.resolve(__dirname, '..', '..', 'profiles');

/**
 * Read and validate profiles/<name>.yaml. Read-only, so safe to run any number of times; the
 * workflow keeps the returned profile in its history, so a provision that is replayed or retried
 * later works from the profile it started with, not from a file edited meanwhile.
 *
 * Everything wrong with a profile is InvalidInput (a retry cannot fix a file): an unknown name
 * (the message lists the known ones), YAML that does not parse, a profile failing the schema
 * (every bad field named), a `name:` that is not the file's name. `name` is a slug (checked by the
 * caller), so it cannot climb out of the directory.
 */
export async function loadProfile(name: string, dir = DEFAULT_PROFILES_DIR): Promise<Profile> {
  const file = path.join(dir, `${name}.yaml`);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const known = await knownProfiles(dir);
    throw failure(
      FailureType.InvalidInput,
      `unknown profile ${JSON.stringify(name)} (known: ${known.join(', ') || 'none'})`,
      { profile: name, known },
    );
  }
  let data: unknown;
  try {
    data = YAML.parse(text);
  } catch (err) {
    throw failure(
      FailureType.InvalidInput,
      `profile ${name}: ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
      { profile: name },
    );
  }
  const parsed = Profile.safeParse(data);
  if (!parsed.success)
    throw failure(FailureType.InvalidInput, `profile ${name} is invalid: ${describeIssues(parsed.error)}`, {
      profile: name,
      fields: parsed.error.issues.map((i) => i.path.map(String).join('.')),
    });
  if (parsed.data.name !== name)
    throw failure(
      FailureType.InvalidInput,
      `profile ${name}: name: is ${JSON.stringify(parsed.data.name)}, not the file's name`,
      { profile: name, fields: ['name'] },
    );
  return parsed.data;
}

async function knownProfiles(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length))
      .sort();
  } catch {
    return [];
  }
}
