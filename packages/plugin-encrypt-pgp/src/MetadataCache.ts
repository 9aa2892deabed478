import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeKey } from '@strata/core/base';
import { SALT_SIZE } from './format.js';

/** Kinds a host needs to read back for its next incremental backup and its WAL archiving. */
const CACHED_KINDS = new Set(['cluster-info', 'manifest', 'blockmap']);

/**
 * Plaintext copies of the metadata a public-key-only host wrote itself (docs/decisions.md): it
 * cannot decrypt the repository, yet an incremental needs its parent's manifest and block maps,
 * and archive-push needs cluster.info. Files are mode 0600 under a 0700 directory; each starts
 * with the stored object's salt, so a copy is used only for the very object it was made for.
 */
export class MetadataCache {
  constructor(readonly dir: string) {}

  wants(key: string): boolean {
    return CACHED_KINDS.has(describeKey(key).kind) && this.file(key) !== undefined;
  }

  async write(key: string, salt: Buffer, plain: Buffer): Promise<void> {
    const file = this.file(key);
    if (!file) return;
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await fs.writeFile(tmp, Buffer.concat([salt, plain]), { mode: 0o600 });
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /** The cached plaintext, when it was made for the object with this salt. */
  async read(key: string, salt: Buffer): Promise<Buffer | undefined> {
    const file = this.file(key);
    if (!file) return undefined;
    const data = await fs.readFile(file).catch(() => undefined);
    if (!data || data.length < SALT_SIZE || !data.subarray(0, SALT_SIZE).equals(salt)) return undefined;
    return data.subarray(SALT_SIZE);
  }

  async has(key: string): Promise<boolean> {
    const file = this.file(key);
    return (
      file !== undefined &&
      (await fs.stat(file).then(
        () => true,
        () => false,
      ))
    );
  }

  async remove(keys: string[]): Promise<void> {
    for (const key of keys) {
      const file = this.file(key);
      if (file) await fs.rm(file, { force: true });
    }
  }

  private file(key: string): string | undefined {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) return undefined;
    return path.join(this.dir, ...parts);
  }
}
