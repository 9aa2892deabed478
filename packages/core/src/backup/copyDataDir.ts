import type { ManifestFile } from '../manifest/types.js';
import { copyFile, type CopierOptions } from './fileCopier.js';
import type { PreviousFiles } from './previousFiles.js';
import { scanDataDir } from './scan.js';
import { Lanes } from '../pipeline/Lanes.js';

export interface CopyDataDirOptions {
  pgdata: string;
  previous?: PreviousFiles;
  copier: Omit<CopierOptions, 'changedBuffer' | 'onBytes'>;
  /** Files copied at once. */
  lanes: number;
  onProgress?: (p: { files: number; bytes: number }) => void;
}

/**
 * Walks PGDATA and copies its files, several at once (each through the block pool); the manifest
 * keeps PGDATA order whatever order the copies finish in. Memory: one gather buffer per lane plus
 * the pool's slots. The first failure stops new copies and is thrown once those running settle.
 */
export async function copyDataDir(opts: CopyDataDirOptions): Promise<{ files: ManifestFile[]; bytes: number; bytesRead: number }> {
  const { previous } = opts;
  const slots: (ManifestFile | undefined)[] = [];
  let bytes = 0;
  let bytesRead = 0;
  let done = 0;
  const buffers = Array.from({ length: opts.lanes }, () => Buffer.allocUnsafe(opts.copier.superBlockSize));
  const lanes = new Lanes(opts.lanes);
  const copier = (changedBuffer: Buffer): CopierOptions => ({
    ...opts.copier,
    changedBuffer,
    onBytes: (n) => {
      bytesRead += n;
      opts.onProgress?.({ files: done, bytes: bytesRead });
    },
  });

  for await (const entry of scanDataDir(opts.pgdata)) {
    if (lanes.failed) break;
    const base = {
      path: entry.path,
      mode: entry.stat.mode & 0o7777,
      uid: entry.stat.uid,
      gid: entry.stat.gid,
      mtime: Math.floor(entry.stat.mtimeMs),
    };
    if (entry.type === 'dir') slots.push({ ...base, type: 'dir' });
    else if (entry.type === 'link') slots.push({ ...base, type: 'link', target: entry.target });
    else {
      const unchanged = previous?.unchanged(entry);
      if (unchanged) {
        slots.push({ ...unchanged, ...base });
        bytes += unchanged.size ?? 0;
        done++;
        continue;
      }
      const index = slots.push(undefined) - 1;
      await lanes.run(async () => {
        // One gather buffer per running copy: there are as many buffers as lanes.
        const buffer = buffers.pop()!;
        try {
          const file = await copyFile(entry, copier(buffer), await previous?.pages(entry.path));
          slots[index] = file;
          bytes += file?.size ?? 0;
          done++;
        } finally {
          buffers.push(buffer);
        }
      });
    }
  }
  await lanes.drain();
  return { files: slots.filter((f): f is ManifestFile => f !== undefined), bytes, bytesRead };
}

/** Bytes of the files a backup of `pgdata` would read (for progress). */
export async function scanTotal(pgdata: string): Promise<number> {
  let total = 0;
  for await (const entry of scanDataDir(pgdata)) if (entry.type === 'file') total += entry.stat.size;
  return total;
}
