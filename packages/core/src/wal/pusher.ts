import { readdirSync, watch, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../logger.js';
import { noopLogger } from '../logger.js';
import type { ArchivePushResult } from './archive.js';
import { fileIdentity, shIdentity, type ArchiveSpool } from './spool.js';

export interface PusherOptions {
  /** PostgreSQL's pg_wal: ready files are announced in its archive_status/. */
  walDir: string;
  spool: ArchiveSpool;
  /** Files pushed at the same time. */
  processMax: number;
  /** Exit after this long with nothing to push. */
  idleMs: number;
  /** Stores one WAL file (archivePush, possibly in a worker); resolves once it is durable. */
  push(walPath: string): Promise<ArchivePushResult>;
  logger?: Logger;
  /** Rescan interval when no file-system event arrives. */
  pollMs?: number;
}

export interface PusherResult {
  pushed: number;
  failed: number;
}

/**
 * The background half of asynchronous archiving: pushes the files PostgreSQL marked ready
 * (oldest first, history files before segments, as PostgreSQL's archiver orders them), up to
 * processMax at a time, and records each outcome in the spool. A file whose last attempt failed
 * is retried once archive-push has reported the failure to PostgreSQL (it removes the marker).
 */
export async function runPusher(opts: PusherOptions): Promise<PusherResult> {
  const { walDir, spool, processMax } = opts;
  const log = opts.logger ?? noopLogger;
  const statusDir = path.join(walDir, 'archive_status');
  const inFlight = new Set<string>();
  const counts: PusherResult = { pushed: 0, failed: 0 };
  // Set by a finished push or a file-system event; the loop rescans at once instead of sleeping.
  let woken = false;
  let wake: () => void = () => {
    woken = true;
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(statusDir, () => wake());
    watcher.on('error', () => undefined);
  } catch {
    // Polling alone still works (e.g. a file system without inotify).
  }

  const pushOne = async (walName: string): Promise<void> => {
    const walPath = path.join(walDir, walName);
    try {
      // Both identities before the file is read: a file changed afterwards no longer matches them.
      const id = shIdentity(walPath);
      const source = await fileIdentity(walPath);
      const result = await opts.push(walPath);
      await spool.writeStored(walName, { id, result, source });
      counts.pushed++;
      log.debug({ wal: walName, again: result.alreadyArchived }, 'stored');
    } catch (err) {
      counts.failed++;
      log.warn({ wal: walName, err: (err as Error).message }, 'push failed');
      await spool
        .writeError(walName, err)
        .catch((e: unknown) => log.error({ wal: walName, err: (e as Error).message }, 'cannot write error marker'));
    }
  };

  let lastWork = Date.now();
  try {
    for (;;) {
      // Markers first, then the ready list: a marker whose file is no longer ready was acknowledged.
      const { stored, failed } = await spool.markers();
      const ready = readyFiles(statusDir);
      await spool.prune(new Set([...ready, ...inFlight]), { stored, failed });
      for (const walName of ready) {
        if (inFlight.size >= processMax) break;
        if (inFlight.has(walName) || stored.has(walName) || failed.has(walName)) continue;
        inFlight.add(walName);
        void pushOne(walName).finally(() => {
          inFlight.delete(walName);
          wake();
        });
      }
      if (inFlight.size > 0) lastWork = Date.now();
      else if (Date.now() - lastWork >= opts.idleMs) break;
      if (!woken) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.pollMs ?? 100);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      woken = false;
      wake = () => {
        woken = true;
      };
    }
  } finally {
    watcher?.close();
  }
  return counts;
}

/** WAL files PostgreSQL marked ready, in the order its archiver asks for them. */
export function readyFiles(statusDir: string): string[] {
  const names = readdirSync(statusDir)
    .filter((f) => f.endsWith('.ready'))
    .map((f) => f.slice(0, -'.ready'.length));
  const history = (n: string) => (n.endsWith('.history') ? 0 : 1);
  return names.sort((a, b) => history(a) - history(b) || (a < b ? -1 : a > b ? 1 : 0));
}
