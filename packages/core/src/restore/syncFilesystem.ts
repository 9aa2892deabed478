import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Flushes the restored files in one syncfs(2) per filesystem (`sync -f`), instead of one fsync per
 * file, which cost seconds on a thousand small files.
 */
export async function syncFilesystem(paths: string[]): Promise<void> {
  for (const p of paths) await run('sync', ['-f', p]);
}
