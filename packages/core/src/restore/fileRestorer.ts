import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { StrataError, isStrataError } from '../errors/index.js';
import { keys } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import type { BlockMapEntry, FrameRef, Manifest, ManifestFile } from '../manifest/types.js';
import { PAGE_HASH_BYTES, hashPages, pageCount } from '../blocks/pageHash.js';

/** Reads frames and block maps of one backup chain, checking every checksum on the way. */
export class FrameReader {
  private cachedMap: { object: number; entries: BlockMapEntry[] } | undefined;
  bytesFetched = 0;

  constructor(
    private readonly repo: Repository,
    private readonly manifest: Manifest,
  ) {}

  packKey(ref: FrameRef): string {
    return keys.pack(this.manifest.cluster, ref.backup ?? this.manifest.label, ref.pack);
  }

  async blockMap(ref: { object: number; index: number }, path: string): Promise<BlockMapEntry> {
    if (this.cachedMap?.object !== ref.object) {
      const key = keys.blockMap(this.manifest.cluster, this.manifest.label, ref.object);
      this.cachedMap = { object: ref.object, entries: await this.repo.readSealed<BlockMapEntry[]>(key, 'blockmap') };
    }
    const entry = this.cachedMap.entries[ref.index];
    if (!entry || entry.path !== path) {
      throw new StrataError('Integrity', `block map ${ref.object} of backup ${this.manifest.label} has no entry ${ref.index} for ${path}`);
    }
    return entry;
  }

  /** Fetches and decompresses one frame; `expectedSize` guards against a frame from elsewhere. */
  async frame(ref: FrameRef, expectedSize: number, what: string): Promise<Buffer> {
    const key = this.packKey(ref);
    const raw = await this.repo.getBuffer(key, { range: { start: ref.offset, end: ref.offset + ref.length } });
    this.bytesFetched += raw.length;
    if (raw.length !== ref.length)
      throw this.corrupt(key, ref, what, `object is shorter than expected (${raw.length} of ${ref.length} bytes)`);
    let data: Buffer;
    try {
      data = await this.repo.compressor(this.manifest.options.compression).decompress(raw);
    } catch (err) {
      if (isStrataError(err) && err.code === 'ConfigInvalid') throw err;
      throw this.corrupt(key, ref, what, 'frame does not decompress', err);
    }
    if (data.length !== expectedSize) throw this.corrupt(key, ref, what, `frame holds ${data.length} bytes, expected ${expectedSize}`);
    return data;
  }

  corrupt(key: string, ref: FrameRef, what: string, why: string, cause?: unknown): StrataError {
    return new StrataError('Integrity', `object "${key}" in ${this.repo.describe()} is corrupt at offset ${ref.offset} (${what}): ${why}`, {
      cause,
      context: { key, repo: this.repo.name },
      hint: 'restore from another copy of the repository or an older backup; "strata info" lists them',
    });
  }
}

/**
 * Restores one regular file to `dest` (created exclusively), verifying each page's digest and the
 * whole file's sha256 before its metadata is set.
 */
export async function restoreFile(file: ManifestFile, dest: string, reader: FrameReader, opts: { chown: boolean }): Promise<number> {
  const handle = await fs.open(dest, 'wx', 0o600);
  const sha = createHash('sha256');
  let written = 0;
  try {
    const size = file.size ?? 0;
    if (file.data) {
      const data = await reader.frame(file.data, size, file.path);
      sha.update(data);
      await handle.write(data, 0, data.length, 0);
      written = data.length;
    } else if (file.blockMap) {
      const map = await reader.blockMap(file.blockMap, file.path);
      const expected = Buffer.from(map.hashes, 'base64');
      const pageSize = map.pageSize;
      if (expected.length !== pageCount(size, pageSize) * PAGE_HASH_BYTES) {
        throw new StrataError(
          'Integrity',
          `block map entry for ${file.path} has ${expected.length / PAGE_HASH_BYTES} page digests for ${size} bytes`,
        );
      }
      const actual = Buffer.alloc(PAGE_HASH_BYTES * map.superBlocks.reduce((a, s) => Math.max(a, s.count), 0));
      for (const sb of [...map.superBlocks].sort((a, b) => a.first - b.first)) {
        const start = sb.first * pageSize;
        const bytes = Math.min(sb.count * pageSize, size - start);
        const data = await reader.frame(sb, bytes, file.path);
        hashPages(data, pageSize, actual, 0);
        const want = expected.subarray(sb.first * PAGE_HASH_BYTES, (sb.first + sb.count) * PAGE_HASH_BYTES);
        if (!actual.subarray(0, want.length).equals(want)) {
          throw reader.corrupt(reader.packKey(sb), sb, file.path, `page digest mismatch in pages ${sb.first}..${sb.first + sb.count - 1}`);
        }
        sha.update(data);
        await handle.write(data, 0, data.length, start);
        written += data.length;
      }
    }
    if (written !== size) throw new StrataError('Integrity', `${file.path}: restored ${written} bytes, the manifest records ${size}`);
    if (file.sha256 && sha.digest('hex') !== file.sha256) {
      throw new StrataError('Integrity', `${file.path}: checksum of the restored file does not match the manifest`, {
        hint: 'the repository is damaged; restore from another copy',
      });
    }
  } finally {
    await handle.close();
  }
  await setMetadata(dest, file, opts);
  return written;
}

export async function setMetadata(dest: string, file: ManifestFile, opts: { chown: boolean }): Promise<void> {
  if (opts.chown) await fs.lchown(dest, file.uid, file.gid);
  if (file.type !== 'link') {
    await fs.chmod(dest, file.mode);
    const t = new Date(file.mtime);
    await fs.utimes(dest, t, t);
  }
}
