import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FileSyncer } from './FileSyncer.js';
import { StrataError, isStrataError } from '../errors/index.js';
import type { Repo } from '../repository/Repo.js';
import type { Manifest, ManifestFile } from '../manifest/types.js';
import { segmentRange } from '../postgres/walNames.js';
import { fetchWal } from '../wal/archive.js';
import { noopLogger, type Logger } from '../logger.js';
import { BlockPool, defaultProcessMax } from '../pipeline/BlockPool.js';
import { Lanes } from '../pipeline/Lanes.js';
import { rateLimiter } from '../pipeline/RateLimiter.js';
import { chooseBackup } from './chooseBackup.js';
import { FrameReader, restoreFile, setMetadata } from './fileRestorer.js';
import { assertNotRunning, deltaRestoreFile, removeStrays } from './delta.js';
import { writeDurably, writeRecoveryConfig, type RecoverySettings } from './recoveryConfig.js';
import type { RecoveryTarget } from './target.js';

export interface RestoreOptions {
  repo: Repo;
  clusterName: string;
  pgdata: string;
  label?: string;
  target?: RecoveryTarget;
  targetAction?: RecoverySettings['targetAction'];
  targetExclusive?: boolean;
  targetTimeline?: string;
  archiveMode?: RecoverySettings['archiveMode'];
  /** The command PostgreSQL runs to fetch WAL, e.g. `strata archive-get %f "%p"`. */
  restoreCommand: string;
  /** Restore over an existing (stopped) data directory, fetching only what differs. */
  delta?: boolean;
  /** With delta: keep files whose size and mtime match without reading them. */
  force?: boolean;
  /** Tablespace OID or name → new location. */
  tablespaceMap?: Record<string, string>;
  logger?: Logger;
  onProgress?: (p: { bytes: number; totalBytes: number }) => void;
  /** Worker threads decompressing and verifying pages (default 2, or the cores when fewer). */
  processMax?: number;
  /** Bytes per second written to the data directory (unset: unlimited). */
  maxRate?: number;
}

export interface RestoreResult {
  label: string;
  pgdata: string;
  files: number;
  bytes: number;
  bytesFetched: number;
  /** Delta restore: files kept as they were, patched in place, restored whole; strays removed. */
  delta?: { kept: number; patched: number; restored: number; removed: string[] };
  target: string;
  durationMs: number;
}

/** pg_control is written last: without it PostgreSQL refuses to start a half-restored directory. */
const PG_CONTROL = 'global/pg_control';

export async function runRestore(opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const log = opts.logger ?? noopLogger;
  const { repo, clusterName } = opts;
  const manifest = await chooseBackup(repo, clusterName, opts.label, opts.target);
  log.info({ label: manifest.label }, 'restoring backup');
  const pgdata = path.resolve(opts.pgdata);
  const locations = tablespaceLocations(manifest, opts.tablespaceMap ?? {});
  // The worker threads start (load zstd and xxhash) while the checks below run.
  const processMax = opts.processMax ?? defaultProcessMax();
  const compressor = repo.compressor(manifest.options.compression);
  const pool = new BlockPool({
    processMax,
    superBlockSize: manifest.options.superBlockSize,
    pageSize: manifest.options.pageSize,
    ...(compressor.parallel ?? { codec: 'none', level: 0 }),
  });
  // Set once the targets are known to be empty: only then is what is in them ours to remove.
  let emptyOnFailure = false;
  try {
    if (opts.delta) await assertNotRunning(pgdata);
    else {
      await assertEmptyTarget(pgdata, 'the target data directory');
      for (const loc of locations.values()) await assertEmptyTarget(loc, 'tablespace location');
      emptyOnFailure = true;
    }
    await assertConsistencyWal(repo, manifest);
    log.debug({ label: manifest.label, ms: Date.now() - started }, 'consistency WAL verified');
    await fs.mkdir(pgdata, { recursive: true, mode: 0o700 });
    return await restoreWithPool(opts, manifest, pgdata, locations, pool, started);
  } catch (err) {
    // The targets were empty: a failed restore leaves them so, with no partial (or, from an
    // encrypted repository, partly decrypted) data behind. A delta restore keeps what it found, and
    // a target refused as not empty is never touched.
    if (emptyOnFailure) await emptyTargets([pgdata, ...locations.values()], log);
    throw err;
  } finally {
    await pool.close();
  }
}

/** Removes everything inside each directory (not the directory: it may be a mount point). */
async function emptyTargets(dirs: string[], log: Logger): Promise<void> {
  for (const dir of dirs) {
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      await fs.rm(path.join(dir, name), { recursive: true, force: true }).catch((err: Error) => {
        log.warn({ dir, name, err: err.message }, 'could not remove part of a failed restore');
      });
    }
  }
}

async function restoreWithPool(
  opts: RestoreOptions,
  manifest: Manifest,
  pgdata: string,
  locations: Map<string, string>,
  pool: BlockPool,
  started: number,
): Promise<RestoreResult> {
  const { repo } = opts;
  const linkTarget = (f: ManifestFile) => tablespaceTarget(f, locations) ?? f.target;
  let delta: RestoreResult['delta'];
  if (opts.delta) {
    // Unstartable until the end: pg_control goes first and comes back last.
    await fs.rm(path.join(pgdata, ...PG_CONTROL.split('/')), { force: true });
    delta = { kept: 0, patched: 0, restored: 0, removed: await removeStrays(pgdata, manifest.files, linkTarget) };
  }
  const chown = process.getuid?.() === 0;
  const reader = new FrameReader(repo, manifest, pool);
  reader.trustFrameChecksums = true;
  if (!opts.delta) reader.readAhead = 1024 * 1024;
  const writeRate = rateLimiter(opts.maxRate);
  const totalBytes = manifest.stats.bytes;
  let bytes = 0;
  let files = 0;
  const dirs: { dest: string; file: ManifestFile }[] = [];
  let pgControl: ManifestFile | undefined;
  // Files are restored several at once; directories and links are made in manifest order first.
  const lanes = new Lanes(pool.size * 2);
  // Each file is made durable once complete, while the others are restored (FileSyncer.ts).
  const syncer = new FileSyncer();
  const fileOpts = { chown, syncer };
  try {
    return await restoreEntries();
  } finally {
    // A failed restore still closes every handle handed over before its files are removed.
    await lanes.drain().catch(() => undefined);
    await syncer.drain().catch(() => undefined);
  }

  async function restoreEntries(): Promise<RestoreResult> {
    // Delta: the largest files first. Each is compared by one block worker, in one pass; started
    // last, the biggest file would leave the other workers idle while it is read.
    // Directories and links keep their manifest order, ahead of the files (a stable sort).
    const weight = (f: ManifestFile) => (f.type === 'file' ? (f.size ?? 0) : Infinity);
    const ordered = delta ? [...manifest.files].sort((a, b) => weight(b) - weight(a)) : manifest.files;
    for (const file of ordered) {
      if (lanes.failed) break;
      const dest = path.join(pgdata, ...file.path.split('/'));
      if (!dest.startsWith(pgdata + path.sep))
        throw new StrataError('Integrity', `manifest path "${file.path}" escapes the data directory`);
      if (file.type === 'dir') {
        await fs.mkdir(dest, { recursive: true, mode: 0o700 });
        dirs.push({ dest, file });
      } else if (file.type === 'link') {
        const target = linkTarget(file)!;
        if (locations.has(file.path)) await fs.mkdir(target, { recursive: true, mode: 0o700 });
        const existing = delta ? await fs.readlink(dest).catch(() => undefined) : undefined;
        if (existing !== target) await fs.symlink(target, dest);
        if (chown) await fs.lchown(dest, file.uid, file.gid);
      } else if (file.path === PG_CONTROL) {
        pgControl = file;
      } else {
        const d = delta;
        await lanes.run(async () => {
          await writeRate?.take(file.size ?? 0);
          if (d) d[await deltaRestoreFile(file, dest, reader, { ...fileOpts, force: opts.force ?? false })]++;
          else await restoreFile(file, dest, reader, fileOpts);
          bytes += file.size ?? 0;
          files++;
          opts.onProgress?.({ bytes, totalBytes });
        });
      }
    }
    await lanes.drain();
    (opts.logger ?? noopLogger).debug({ files, bytes, ms: Date.now() - started }, 'files restored');
    await syncer.drain();
    (opts.logger ?? noopLogger).debug({ synced: syncer.synced, ms: Date.now() - started }, 'files synced');
    if (!pgControl) throw new StrataError('Integrity', `backup ${manifest.label} has no ${PG_CONTROL}`);

    await writeDurably(path.join(pgdata, 'backup_label'), manifest.backupLabel);
    if (manifest.tablespaceMap)
      await writeDurably(path.join(pgdata, 'tablespace_map'), remapTablespaceMap(manifest.tablespaceMap, locations));
    await writeRecoveryConfig(pgdata, {
      restoreCommand: opts.restoreCommand,
      target: opts.target,
      targetAction: opts.targetAction,
      targetExclusive: opts.targetExclusive,
      targetTimeline: opts.targetTimeline,
      archiveMode: opts.archiveMode,
      label: manifest.label,
    });
    if (chown) {
      // Files restore itself wrote belong to the data directory's owner, not root: PostgreSQL
      // started as that user must be able to rename backup_label and remove recovery.signal.
      const owner = rootDirMeta(manifest);
      for (const name of ['backup_label', 'tablespace_map', 'postgresql.auto.conf', 'recovery.signal']) {
        await fs.lchown(path.join(pgdata, name), owner.uid, owner.gid).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
    }
    // Directory times once their entries are all there (writing files into them changed them); then
    // every directory is synced: everything else is on disk before pg_control makes the directory
    // startable.
    for (const { dest, file } of [...dirs].reverse()) await setMetadata(dest, file, { chown });
    const rootMeta = { ...rootDirMeta(manifest), path: '' };
    await setMetadata(pgdata, rootMeta, { chown }).catch(() => undefined);
    for (const { dest, file } of dirs) await syncer.syncPath(dest, file.path);
    for (const dir of [pgdata, ...locations.values()]) await syncer.syncPath(dir, dir);
    await syncer.drain();
    (opts.logger ?? noopLogger).debug({ ms: Date.now() - started }, 'data directory synced');
    const controlTmp = path.join(pgdata, `${PG_CONTROL}.strata-tmp`);
    await fs.rm(controlTmp, { force: true });
    bytes += await restoreFile(pgControl, controlTmp, reader, fileOpts);
    await syncer.drain();
    const globalDir = path.dirname(path.join(pgdata, ...PG_CONTROL.split('/')));
    await fs.rename(controlTmp, path.join(pgdata, ...PG_CONTROL.split('/')));
    files++;
    const global = dirs.find((d) => d.dest === globalDir);
    if (global) await setMetadata(global.dest, global.file, { chown });
    await syncer.syncPath(globalDir, path.dirname(PG_CONTROL));
    await syncer.drain();

    return {
      label: manifest.label,
      pgdata,
      files,
      bytes,
      bytesFetched: reader.bytesFetched,
      ...(delta ? { delta } : {}),
      target: describeTarget(opts.target),
      durationMs: Date.now() - started,
    };
  }
}

function rootDirMeta(m: Manifest): ManifestFile {
  const anyFile = m.files.find((f) => f.path === 'PG_VERSION');
  return { path: '', type: 'dir', mode: 0o700, uid: anyFile?.uid ?? 0, gid: anyFile?.gid ?? 0, mtime: Date.now() };
}

export function describeTarget(t: RecoveryTarget | undefined): string {
  if (!t) return 'end of archived WAL';
  switch (t.kind) {
    case 'time':
      return `time ${t.text}`;
    case 'xid':
      return `xid ${t.xid}`;
    case 'lsn':
      return `lsn ${t.text}`;
    case 'name':
      return `restore point "${t.name}"`;
    case 'immediate':
      return 'consistency (immediate)';
  }
}

async function assertEmptyTarget(dir: string, what: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StrataError('Precondition', `cannot read ${what} ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (entries.length > 0) {
    const running = entries.includes('postmaster.pid') ? ' (postmaster.pid is present: is PostgreSQL running there?)' : '';
    throw new StrataError('Precondition', `${what} ${dir} is not empty${running}; restore never overwrites existing files`, {
      hint: 'restore into a new or empty directory (--pgdata), or use --delta to bring this stopped data directory to the backup, fetching only what differs',
    });
  }
}

/**
 * The WAL from backup start to stop must be archived and intact, or the restored cluster can never
 * become consistent: fetch and verify it before writing anything.
 */
async function assertConsistencyWal(repo: Repo, m: Manifest): Promise<void> {
  for (const seg of segmentRange(m.startWal, m.stopWal, m.walSegmentSize)) {
    try {
      await fetchWal(repo, m.cluster, seg);
    } catch (err) {
      if (isStrataError(err) && err.code === 'NotFound') {
        throw new StrataError('NotFound', `WAL segment ${seg}, needed to make backup ${m.label} consistent, is not in ${repo.describe()}`, {
          hint: 'restore from another repository copy, or choose another backup with --set',
        });
      }
      throw err;
    }
  }
}

function tablespaceLocations(m: Manifest, map: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const ts of m.tablespaces) {
    const loc = map[String(ts.oid)] ?? map[ts.name] ?? ts.location;
    out.set(`pg_tblspc/${ts.oid}`, path.resolve(loc));
  }
  const known = new Set(m.tablespaces.flatMap((t) => [String(t.oid), t.name]));
  for (const k of Object.keys(map)) {
    if (!known.has(k))
      throw new StrataError('InvalidArgument', `--tablespace-map names "${k}", which is not a tablespace of backup ${m.label}`);
  }
  return out;
}

function tablespaceTarget(file: ManifestFile, locations: Map<string, string>): string | undefined {
  return locations.get(file.path);
}

function remapTablespaceMap(map: string, locations: Map<string, string>): string {
  return map
    .split('\n')
    .map((line) => {
      const oid = /^(\d+) /.exec(line)?.[1];
      const loc = oid ? locations.get(`pg_tblspc/${oid}`) : undefined;
      return loc ? `${oid} ${loc}` : line;
    })
    .join('\n');
}
