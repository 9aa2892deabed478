import { lightFs } from '@strata/core/lightFs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { GlobalFlags } from '../cli/context.js';
import { configPath } from '../config/configPath.js';
import type { AsyncTarget } from './asyncClient.js';

/**
 * Remembers, per config file and --cluster/--repo, where an async archive-push finds its spool,
 * so the next call skips parsing and validating the config (the YAML parser and the schemas
 * cost several times Node's own start-up). An entry is used only while the config file holds the
 * very text that was validated (length and a hash; never the text itself, which may hold
 * secrets); anything else takes the full path, which validates the config and writes a new entry. Lives in the user's cache directory
 * ($XDG_CACHE_HOME, or .cache in the account's home directory, then strata/); failing to write it only costs speed.
 */
interface Entry {
  version: 3;
  key: string;
  config: Stamp;
  target: AsyncTarget;
}

interface Stamp {
  length: number;
  hash: string;
}

function stampOf(text: string): Stamp {
  return { length: text.length, hash: fnv1a(text) };
}

function entryKey(flags: GlobalFlags, env: NodeJS.ProcessEnv): string {
  return JSON.stringify([configPath(flags.config, env), flags.cluster ?? null, flags.repo ?? null]);
}

function entryFile(key: string, env: NodeJS.ProcessEnv): string {
  // The account's own home, not $HOME: under runuser or sudo $HOME may be another user's.
  const base = env.XDG_CACHE_HOME || path.join(os.userInfo().homedir, '.cache');
  return path.join(base, 'strata', `archive-${fnv1a(key)}.json`);
}

/** A cheap 64-bit hash (node:crypto costs more to load than this whole client); entries carry their key. */
function fnv1a(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

export function readCachedTarget(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): AsyncTarget | undefined {
  try {
    const key = entryKey(flags, env);
    const entry = JSON.parse(lightFs.readFileSync(entryFile(key, env), 'utf8')) as Entry;
    if (entry.version !== 3 || entry.key !== key) return undefined;
    const now = stampOf(lightFs.readFileSync(entry.target.configPath, 'utf8'));
    return now.length === entry.config.length && now.hash === entry.config.hash ? entry.target : undefined;
  } catch {
    return undefined;
  }
}

/** `configText`: the text the target was resolved from (LoadedConfig.text). */
export function writeCachedTarget(flags: GlobalFlags, target: AsyncTarget, configText: string, env: NodeJS.ProcessEnv = process.env): void {
  try {
    const key = entryKey(flags, env);
    const file = entryFile(key, env);
    lightFs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}`;
    lightFs.writeFileSync(tmp, JSON.stringify({ version: 3, key, config: stampOf(configText), target } satisfies Entry), { mode: 0o600 });
    lightFs.renameSync(tmp, file);
  } catch {
    // A read-only or missing home: every call takes the full path, which is only slower.
  }
}
