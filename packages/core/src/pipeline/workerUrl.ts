import * as fs from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StrataError } from '../errors/index.js';

/**
 * A built worker module (`blockWorker`, `hashWorker`). Unit tests run core from its TypeScript
 * sources, where no .js sits beside this file: they use the build output (run `npx tsc -b` first).
 */
export function builtWorkerUrl(name: string): URL {
  const here = new URL(`./${name}.js`, import.meta.url);
  if (fs.existsSync(fileURLToPath(here))) return here;
  const built = fileURLToPath(here).replace(/([\\/])src([\\/])pipeline([\\/])([^\\/]+)\.js$/, '$1dist$2pipeline$3$4.js');
  if (!fs.existsSync(built)) {
    throw new StrataError('Internal', `the worker module ${name} is missing (${built})`, { hint: 'build the project first (npx tsc -b)' });
  }
  return pathToFileURL(built);
}
