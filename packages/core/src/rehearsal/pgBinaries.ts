import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { StrataError } from '../errors/index.js';

const run = promisify(execFile);

/**
 * The server binaries for a major version: the configured directory, else the Debian
 * (/usr/lib/postgresql/<v>/bin) and PGDG RPM (/usr/pgsql-<v>/bin) locations.
 */
export async function findPgBin(configured: string | undefined, major: number): Promise<string> {
  const candidates = configured ? [configured] : [`/usr/lib/postgresql/${major}/bin`, `/usr/pgsql-${major}/bin`];
  for (const dir of candidates) {
    const ok = await Promise.all(
      ['postgres', 'pg_ctl'].map((b) =>
        fs.access(path.join(dir, b), fs.constants.X_OK).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (!ok.every(Boolean)) continue;
    const got = await serverMajor(dir);
    if (got !== major) {
      throw new StrataError('ConfigInvalid', `${dir} holds PostgreSQL ${got} binaries, but the backup is of PostgreSQL ${major}`, {
        hint: `set clusters.<name>.pgBin to the bin directory of PostgreSQL ${major}`,
      });
    }
    return dir;
  }
  throw new StrataError('Precondition', `no PostgreSQL ${major} server binaries found (looked in ${candidates.join(', ')})`, {
    hint: `install PostgreSQL ${major}, or set clusters.<name>.pgBin to the directory holding its postgres and pg_ctl`,
  });
}

async function serverMajor(dir: string): Promise<number> {
  const { stdout } = await run(path.join(dir, 'postgres'), ['--version']);
  const m = /(\d+)(?:\.\d+)?/.exec(stdout.replace(/^[^0-9]*/, ''));
  return m ? Number(m[1]) : NaN;
}
