// @ts-check
/**
 * strata-plugin-example: a complete third-party storage plugin in one file, the companion of
 * docs/writing-a-storage-plugin.md. It keeps every object as one file in a single flat directory,
 * the key percent-encoded into the file name. Plain ESM JavaScript so it needs no build step;
 * @strata/core and zod are peer dependencies: Strata provides them.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StrataError, definePlugin } from '@strata/core';
import { z } from 'zod';

const TMP = '.tmp-';

/** @param {unknown} err @param {string} operation @param {string} key */
function mapError(err, operation, key) {
  const code = /** @type {NodeJS.ErrnoException} */ (err)?.code;
  const context = { key };
  if (code === 'ENOENT') return new StrataError('NotFound', `object "${key}" not found`, { operation, context });
  if (code === 'EEXIST') return new StrataError('AlreadyExists', `object "${key}" already exists`, { operation, context });
  if (code === 'EACCES' || code === 'EPERM')
    return new StrataError('PermissionDenied', `no permission to ${operation} "${key}"`, { operation, context });
  if (code === 'ABORT_ERR') return new StrataError('Aborted', `${operation} of "${key}" was aborted`, { operation, context });
  return new StrataError('Unavailable', `${operation} of "${key}" failed: ${err instanceof Error ? err.message : String(err)}`, {
    operation,
    context,
    cause: err,
  });
}

/** @implements {import('@strata/core').StorageBackend} */
class FlatDirBackend {
  /** @param {string} dir */
  constructor(dir) {
    this.dir = dir;
    /** @type {import('@strata/core').StorageCapabilities} */
    this.capabilities = { readWithRange: true, writeIfNotExists: true, tags: false, listMaxKeys: 1000 };
  }

  describe() {
    return `example:${this.dir}`;
  }

  /** @param {string} key */
  file(key) {
    // The contract's keys are relative '/'-separated paths: refuse anything else, as every backend must.
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new StrataError('InvalidArgument', `invalid object key "${key}"`);
    }
    return path.join(this.dir, encodeURIComponent(key));
  }

  /** @param {string} key @param {Buffer | Readable} body @param {import('@strata/core').PutOptions} [options] */
  async put(key, body, options = {}) {
    const target = this.file(key);
    const tmp = path.join(this.dir, `${TMP}${randomBytes(8).toString('hex')}`);
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await pipeline(Buffer.isBuffer(body) ? Readable.from([body]) : body, createWriteStream(tmp, { flags: 'wx' }), {
        signal: options.signal,
      });
      const written = await fs.open(tmp, 'r');
      try {
        await written.sync(); // durable before it becomes visible
      } finally {
        await written.close();
      }
      // Visible only once complete: link() refuses an existing name (ifNoneMatch), rename() replaces.
      if (options.ifNoneMatch) {
        await fs.link(tmp, target);
        await fs.unlink(tmp);
      } else {
        await fs.rename(tmp, target);
      }
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw mapError(err, 'put', key);
    }
  }

  /** @param {string} key @param {import('@strata/core').GetOptions} [options] */
  async get(key, options = {}) {
    const file = this.file(key);
    const { range } = options;
    try {
      await fs.access(file);
    } catch (err) {
      throw mapError(err, 'get', key);
    }
    if (range?.end !== undefined && range.end <= range.start) return Readable.from([]);
    return createReadStream(file, { start: range?.start, end: range?.end === undefined ? undefined : range.end - 1 });
  }

  /** @param {string} key */
  async head(key) {
    const st = await fs.stat(this.file(key)).catch(() => undefined);
    return st?.isFile() ? { key, size: st.size, mtime: st.mtime } : undefined;
  }

  /** @param {string} prefix */
  async *list(prefix) {
    const names = await fs.readdir(this.dir).catch(() => /** @type {string[]} */ ([]));
    const found = names
      .filter((n) => !n.startsWith(TMP))
      .map((n) => decodeURIComponent(n))
      .filter((k) => k.startsWith(prefix));
    for (const key of found.sort()) {
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  /** @param {string[]} keys */
  async delete(keys) {
    for (const key of keys) await fs.rm(this.file(key), { force: true });
  }
}

export default definePlugin({
  name: 'example',
  kind: 'storage',
  configSchema: z.object({ dir: z.string().min(1, 'dir must name the directory objects go to') }).strict(),
  create: (config, context) => new FlatDirBackend(path.resolve(context.configDir, config.dir)),
});
