import fs from 'node:fs';
import path from 'node:path';

/**
 * How a script includes a fragment from its own folder: `. "$(dirname -- "$0")/NAME.sh"`, after
 * `# shellcheck source=NAME.sh` so that shellcheck -x reads the fragment with the script. The file
 * run locally sources it; on a host there is no file to source, so remoteScript puts the fragment's
 * text in place of both lines.
 */
const INCLUDE = /^(?:# shellcheck source=\S+\n)?\. "\$\(dirname -- "\$0"\)\/([A-Za-z0-9_-]+\.sh)"$/gm;

/**
 * The text of a script that runs on the hosts (`sh -c TEXT NAME ARGS…` or `bash -c TEXT …`), kept
 * as a .sh file beside the module that runs it (deploy/build.ts ships it beside the compiled
 * module) and read once, when that module loads. The text run is the file's body:
 * - its header (the first lines, while they are comments or blank: shebang, shellcheck directives,
 *   what it does and its arguments) is for readers and shellcheck, and is left out of every command;
 * - each include line (INCLUDE) becomes the body of the fragment it names;
 * - `constants` are assignments (`name=value`) the body must hold, for the values the TypeScript
 *   side relies on too (an exit status it tells apart, a path): checked here, so that a module
 *   whose script disagrees with it fails to load instead of misreading an outcome.
 */
export function remoteScript(
  dir: string,
  file: string,
  constants: Record<string, string | number> = {},
): string {
  const text = body(dir, file).replace(INCLUDE, (_, fragment: string) => body(dir, fragment).trimEnd());
  for (const [name, value] of Object.entries(constants)) {
    const assignment = `${name}=${String(value)}`;
    if (!text.split(/[\s;]+/).includes(assignment))
      throw new Error(`${path.join(dir, file)} does not set ${assignment}, which the code expects`);
  }
  return text.trimEnd();
}

function body(dir: string, file: string): string {
  const lines = fs.readFileSync(path.join(dir, file), 'utf8').split('\n');
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (first < 0) throw new Error(`${path.join(dir, file)} holds no commands`);
  return lines.slice(first).join('\n');
}
