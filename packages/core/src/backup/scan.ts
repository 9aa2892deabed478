import * as fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { StrataError } from '../errors/index.js';
import { EXCLUDED_DIR_CONTENTS, EXCLUDED_TOP_FILES, excludedRelationFiles, isDatabaseDir, isExcludedAnywhere } from './exclusions.js';

export interface ScanEntry {
  /** Relative to PGDATA, '/' separated. */
  path: string;
  absPath: string;
  type: 'file' | 'dir' | 'link';
  stat: Stats;
  target?: string;
}

/**
 * Walks PGDATA in sorted order, applying the exclusions. Tablespace links under pg_tblspc are
 * reported as links and their targets walked as pg_tblspc/<oid>/...; pg_wal may be a link to
 * another disk and is reported as a directory.
 */
export async function* scanDataDir(pgdata: string): AsyncGenerator<ScanEntry> {
  // walk() forgives vanished directories; a missing PGDATA must not become an empty backup.
  const st = await fs.stat(pgdata).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new StrataError('NotFound', `data directory ${pgdata} does not exist or is not a directory`, {
      context: { path: pgdata },
      hint: "set pgdata in the config to the cluster's data directory (SHOW data_directory), on the host where PostgreSQL runs",
    });
  }
  yield* walk(pgdata, '');
}

async function* walk(absDir: string, relDir: string): AsyncGenerator<ScanEntry> {
  let names: string[];
  try {
    names = (await fs.readdir(absDir)).sort();
  } catch (err) {
    // A directory dropped during the backup (DROP DATABASE) is legitimately gone: WAL replays it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const skipRelations = isDatabaseDir(relDir) ? excludedRelationFiles(names) : new Set<string>();
  for (const name of names) {
    if (isExcludedAnywhere(name) || skipRelations.has(name)) continue;
    if (relDir === '' && EXCLUDED_TOP_FILES.has(name)) continue;
    const rel = relDir === '' ? name : `${relDir}/${name}`;
    const abs = path.join(absDir, name);
    let stat: Stats;
    try {
      stat = await fs.lstat(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (stat.isSymbolicLink()) {
      const target = await fs.readlink(abs);
      const targetStat = await fs.stat(abs).catch(() => undefined);
      if (relDir === 'pg_tblspc' && targetStat?.isDirectory()) {
        yield { path: rel, absPath: abs, type: 'link', stat, target };
        yield* walk(abs, rel);
      } else if (relDir === '' && name === 'pg_wal' && targetStat?.isDirectory()) {
        yield { path: rel, absPath: abs, type: 'dir', stat: targetStat };
      } else {
        yield { path: rel, absPath: abs, type: 'link', stat, target };
      }
      continue;
    }
    if (stat.isDirectory()) {
      yield { path: rel, absPath: abs, type: 'dir', stat };
      if (relDir === '' && EXCLUDED_DIR_CONTENTS.has(name)) {
        // Keep pg_wal/archive_status: PostgreSQL expects it.
        if (name === 'pg_wal') {
          const st = await fs.lstat(path.join(abs, 'archive_status')).catch(() => undefined);
          if (st?.isDirectory()) yield { path: `${rel}/archive_status`, absPath: path.join(abs, 'archive_status'), type: 'dir', stat: st };
        }
        continue;
      }
      yield* walk(abs, rel);
    } else if (stat.isFile()) {
      yield { path: rel, absPath: abs, type: 'file', stat };
    }
  }
}
