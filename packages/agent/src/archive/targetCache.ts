import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GlobalFlags } from '../cli/context.js';
import { configPath } from '../config/configPath.js';
import type { AsyncTarget } from './asyncClient.js';

/**
 * Remembers, per config file and --cluster/--repo, where an async archive-push finds its spool,
 * so the next call skips parsing and validating the config (the YAML parser and the schemas
 * cost several times Node's own start-up). An entry is used only while the config file is
 * unchanged: same device, inode, size, mtime and ctime; anything else takes the full path, which
 * validates the config and writes a new entry. Lives in the user's cache directory
 * ($XDG_CACHE_HOME, or .cache in the account's home directory, then strata/); failing to write it only costs speed.
 */
interface Entry {
  version: 1;
  config: Stamp;
  target: AsyncTarget;
}

interface Stamp {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

function stamp(file: string): Stamp {
  const s = statSync(file);
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
}

function entryFile(flags: GlobalFlags, env: NodeJS.ProcessEnv): string {
  const key = createHash('sha256')
    .update(JSON.stringify([configPath(flags.config, env), flags.cluster ?? null, flags.repo ?? null]))
    .digest('hex')
    .slice(0, 32);
  // The account's own home, not $HOME: under runuser or sudo $HOME may be another user's.
  const base = env.XDG_CACHE_HOME || path.join(os.userInfo().homedir, '.cache');
  return path.join(base, 'strata', `archive-${key}.json`);
}

export function readCachedTarget(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): AsyncTarget | undefined {
  try {
    const entry = JSON.parse(readFileSync(entryFile(flags, env), 'utf8')) as Entry;
    if (entry.version !== 1) return undefined;
    const now = stamp(entry.target.configPath);
    const same = (Object.keys(now) as (keyof Stamp)[]).every((k) => now[k] === entry.config[k]);
    return same ? entry.target : undefined;
  } catch {
    return undefined;
  }
}

export function writeCachedTarget(flags: GlobalFlags, target: AsyncTarget, configStamp: Stamp, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const file = entryFile(flags, env);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ version: 1, config: configStamp, target } satisfies Entry), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // A read-only or missing home: every call takes the full path, which is only slower.
  }
}

export { stamp as configStamp };
