import type { ManifestFile } from '../manifest/types.js';
import { copyFile, type CopierOptions } from './fileCopier.js';
import type { PreviousFiles } from './previousFiles.js';
import { scanDataDir } from './scan.js';

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
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  const copier = (changedBuffer: Buffer): CopierOptions => ({
    ...opts.copier,
    changedBuffer,
    onBytes: (n) => {
      bytesRead += n;
      opts.onProgress?.({ files: done, bytes: bytesRead });
    },
  });

  for await (const entry of scanDataDir(opts.pgdata)) {
    if (failure) break;
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
      while (running.size >= opts.lanes) await Promise.race(running);
      if (failure) break;
      const buffer = buffers.pop()!;
      let task: Promise<void> | undefined = undefined;
      task = (async () => {
        try {
          const file = await copyFile(entry, copier(buffer), await previous?.pages(entry.path));
          slots[index] = file;
          bytes += file?.size ?? 0;
          done++;
        } catch (err) {
          failure ??= { err };
        } finally {
          buffers.push(buffer);
          running.delete(task!);
        }
      })();
      running.add(task);
    }
  }
  await Promise.all(running);
  if (failure) throw failure.err;
  return { files: slots.filter((f): f is ManifestFile => f !== undefined), bytes, bytesRead };
}

/** Bytes of the files a backup of `pgdata` would read (for progress). */
export async function scanTotal(pgdata: string): Promise<number> {
  let total = 0;
  for await (const entry of scanDataDir(pgdata)) if (entry.type === 'file') total += entry.stat.size;
  return total;
}
