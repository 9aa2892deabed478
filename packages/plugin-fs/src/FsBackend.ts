import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  StrataError,
  isStrataError,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
} from '@strata/core/base';
import type { FsConfig } from './index.js';

/** Temporary files carry this marker; list() never shows them and a crash leaves only these. */
const TMP_MARKER = '.strata-tmp-';
/**
 * Tags live in a parallel tree of small JSON sidecars, <root>/.strata-tags/<key> (no xattrs:
 * they need a native module, and NFS and some filesystems drop them). Keys under it are reserved.
 */
const TAGS_DIR = '.strata-tags';

/**
 * A repository in a local or NFS directory. Objects become visible atomically: data goes to a
 * temporary file, is fsynced, then linked (ifNoneMatch) or renamed into place, and the directory
 * is fsynced.
 */
/** Largest chunk a get stream reads at once. */
const MAX_READ_CHUNK = 4 * 1024 * 1024;

export class FsBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = {
    readWithRange: true,
    writeIfNotExists: true,
    tags: true,
    listMaxKeys: 1000,
  };
  readonly root: string;
  private readonly fsync: boolean;

  constructor(config: FsConfig, configDir: string) {
    this.root = path.resolve(configDir, config.path);
    this.fsync = config.fsync;
  }

  describe(): string {
    return `fs:${this.root}`;
  }

  private resolve(key: string, tree = this.root): string {
    const parts = key.split('/');
    if (key === '' || key.startsWith('/') || parts.some((p) => p === '..' || p === '.' || p === '') || parts[0] === TAGS_DIR) {
      throw new StrataError('InvalidArgument', `invalid object key "${key}"`, { operation: 'resolve' });
    }
    return path.join(tree, ...parts);
  }

  private tagsFile(key: string): string {
    return this.resolve(key, path.join(this.root, TAGS_DIR));
  }

  /**
   * Writes (or, without tags, removes) an object's tag sidecar. Written before the object becomes
   * visible, so a visible object has its tags; not fsynced: tags describe, they hold no data.
   */
  private async writeTags(key: string, tags: PutOptions['tags']): Promise<void> {
    const file = this.tagsFile(key);
    if (!tags || Object.keys(tags).length === 0) {
      await fs.rm(file, { force: true });
      return;
    }
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
    const tmp = `${file}${TMP_MARKER}${randomBytes(6).toString('hex')}`;
    await fs.writeFile(tmp, JSON.stringify(tags), { mode: 0o640 });
    await fs.rename(tmp, file);
  }

  private async readTags(key: string): Promise<PutOptions['tags']> {
    const text = await fs.readFile(this.tagsFile(key), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as PutOptions['tags'];
    } catch {
      return undefined;
    }
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    const target = this.resolve(key);
    const dir = path.dirname(target);
    await this.ensureDir(dir, key);
    const tmp = `${target}${TMP_MARKER}${randomBytes(6).toString('hex')}`;
    try {
      const out = createWriteStream(tmp, { flags: 'wx', mode: 0o640 });
      const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
      await pipeline(source, out, { signal: options.signal });
      if (this.fsync) await fsyncPath(tmp);
      await this.writeTags(key, options.tags);
      if (options.ifNoneMatch) {
        // link() fails with EEXIST when the name is taken: an atomic create-if-absent.
        await fs.link(tmp, target);
        await fs.unlink(tmp);
      } else {
        await fs.rename(tmp, target);
      }
      if (this.fsync) await fsyncPath(dir);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      // A sidecar written for an object that never appeared would outlive it.
      if (!(await fs.stat(target).catch(() => undefined))) await fs.rm(this.tagsFile(key), { force: true });
      throw mapFsError(err, 'put', key);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const file = this.resolve(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (err) {
      throw mapFsError(err, 'get', key);
    }
    // A directory is only a prefix of other keys, not an object (open() succeeds on it).
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new StrataError('NotFound', `object "${key}" not found`, { operation: 'get', context: { key } });
    }
    const { range } = options;
    const end = range?.end === undefined ? undefined : range.end - 1;
    if (end !== undefined && range && end < range.start) {
      await handle.close();
      return Readable.from([]);
    }
    // A ranged read (a restore's read-ahead window, a frame) in one read call where it fits: with the
    // 64 KiB default a 1 MiB window took 16 reads and a copy to join them.
    const wanted = end === undefined ? undefined : end + 1 - (range?.start ?? 0);
    const highWaterMark = Math.max(64 * 1024, Math.min(wanted ?? 1024 * 1024, MAX_READ_CHUNK));
    return createReadStream('', { fd: handle, start: range?.start, end, signal: options.signal, highWaterMark });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.resolve(key));
      if (!st.isFile()) return undefined;
      const tags = await this.readTags(key);
      return { key, size: st.size, mtime: st.mtime, ...(tags ? { tags } : {}) };
    } catch (err) {
      const mapped = mapFsError(err, 'head', key);
      if (mapped.code === 'NotFound') return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory the prefix names, then filter by the remaining name prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash < 0 ? '' : prefix.slice(0, slash);
    yield* this.walk(dirKey, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncGenerator<ObjectInfo> {
    const dir = dirKey === '' ? this.root : this.resolve(dirKey);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      const mapped = mapFsError(err, 'list', dirKey);
      if (mapped.code === 'NotFound') return;
      throw mapped;
    }
    // Keys under a directory "d" start with "d/": compare that, so "d-1" and "d.x" (which sort
    // before '/') come before "d/..." as lexical key order requires.
    const sortName = (e: import('node:fs').Dirent) => (e.isDirectory() ? `${e.name}/` : e.name);
    entries.sort((a, b) => (sortName(a) < sortName(b) ? -1 : sortName(a) > sortName(b) ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.includes(TMP_MARKER) || (dirKey === '' && entry.name === TAGS_DIR)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend when the directory can hold keys matching the prefix.
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await fs.stat(path.join(dir, entry.name)).catch(() => undefined);
        if (st) yield { key, size: st.size, mtime: st.mtime };
      }
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) {
      try {
        await fs.unlink(this.resolve(key));
      } catch (err) {
        const mapped = mapFsError(err, 'delete', key);
        if (mapped.code !== 'NotFound') throw mapped;
      }
      await fs.rm(this.tagsFile(key), { force: true });
    }
  }

  private async ensureDir(dir: string, key: string): Promise<void> {
    try {
      await fs.mkdir(dir, { recursive: true, mode: 0o750 });
    } catch (err) {
      throw mapFsError(err, 'put', key);
    }
  }
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await fs.open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function mapFsError(err: unknown, operation: string, key: string): StrataError {
  if (isStrataError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const context = { key };
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new StrataError('NotFound', `object "${key}" not found`, { cause: err, operation, context });
    case 'EEXIST':
      return new StrataError('AlreadyExists', `object "${key}" already exists`, { cause: err, operation, context });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new StrataError('PermissionDenied', `permission denied on "${key}" (${code})`, {
        cause: err,
        operation,
        context,
        hint: 'make the repository directory writable by the user running strata (usually postgres)',
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StrataError('Unavailable', `no space left for "${key}" (${code})`, { cause: err, operation, context, retryable: false });
    case 'ABORT_ERR':
      return new StrataError('Aborted', `${operation} of "${key}" aborted`, { cause: err, operation, context });
    default:
      return new StrataError('Unavailable', `${operation} "${key}" failed: ${(err as Error).message}`, {
        cause: err,
        operation,
        context,
      });
  }
}
