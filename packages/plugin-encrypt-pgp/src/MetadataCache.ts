import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeKey } from '@strata/core/base';

/** Kinds a host needs to read back for its next incremental backup and its WAL archiving. */
const CACHED_KINDS = new Set(['cluster-info', 'manifest', 'blockmap']);

/**
 * Plaintext copies of the metadata a public-key-only host wrote itself (docs/decisions.md): it
 * cannot decrypt the repository, yet an incremental needs its parent's manifest and block maps,
 * and archive-push needs cluster.info. Files are mode 0600 under 0700 directories, named by the
 * object key and the stored object's random salt (`manifest@<salt>`), so a copy is used only for
 * the very object it was made of, and two repositories sharing a state directory and a name
 * cannot overwrite each other's copies.
 */
export class MetadataCache {
  constructor(readonly dir: string) {}

  wants(key: string): boolean {
    return CACHED_KINDS.has(describeKey(key).kind) && this.base(key) !== undefined;
  }

  async write(key: string, salt: Buffer, plain: Buffer): Promise<void> {
    const file = this.file(key, salt);
    if (!file) return;
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await fs.writeFile(tmp, plain, { mode: 0o600 });
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /** The cached plaintext of the object with this salt, if this host wrote it. */
  async read(key: string, salt: Buffer): Promise<Buffer | undefined> {
    const file = this.file(key, salt);
    return file ? fs.readFile(file).catch(() => undefined) : undefined;
  }

  /** Removes every copy made for these keys. */
  async remove(keys: string[]): Promise<void> {
    for (const key of keys) {
      const base = this.base(key);
      if (!base) continue;
      const names = await fs.readdir(path.dirname(base)).catch(() => [] as string[]);
      const prefix = `${path.basename(base)}@`;
      for (const n of names) if (n.startsWith(prefix)) await fs.rm(path.join(path.dirname(base), n), { force: true });
    }
  }

  private base(key: string): string | undefined {
    const parts = key.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0') || p.includes('@'))) return undefined;
    return path.join(this.dir, ...parts);
  }

  private file(key: string, salt: Buffer): string | undefined {
    const base = this.base(key);
    return base && `${base}@${salt.toString('hex')}`;
  }
}
