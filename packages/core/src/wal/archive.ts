import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { StrataError, isStrataError } from '../errors/index.js';
import { keys, parseWalObjectName } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import { readClusterInfo } from '../repository/clusterInfo.js';
import { SEGMENT_RE, isWalFileName } from '../postgres/walNames.js';
import { prepareWal, sameCodec, type PreparedWal } from './prepare.js';
import { unreadableWal, walNameOf } from './walFile.js';

export { unreadableWal, walNameOf };
import type { Logger } from '../logger.js';
import { noopLogger } from '../logger.js';

export interface ArchivePushOptions {
  repo: Repo;
  cluster: string;
  /** Path PostgreSQL passed as %p (relative to PGDATA, the archiver's working directory). */
  walPath: string;
  compression: string;
  logger?: Logger;
}

export interface ArchivePushResult {
  walName: string;
  key: string;
  sha256: string;
  size: number;
  storedBytes: number;
  /** True when the identical file was already archived. */
  alreadyArchived: boolean;
}

export interface WalObject {
  key: string;
  walName: string;
  sha256: string;
  extension: string;
  size: number;
}

/** Lists the archived copies of one WAL file (normally zero or one). */
export async function findWalObjects(repo: Repo, cluster: string, walName: string): Promise<WalObject[]> {
  const prefix = `${keys.walDir(cluster, walName)}${walName}-`;
  const found: WalObject[] = [];
  for await (const o of repo.list(prefix)) {
    const parsed = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1));
    if (parsed && parsed.walName === walName) found.push({ key: o.key, size: o.size, ...parsed });
  }
  return found;
}

/**
 * Archives one WAL file. Resolves only when the object is durably stored. The same bytes again
 * succeed; different bytes under an archived name fail and never overwrite.
 */
export async function archivePush(opts: ArchivePushOptions): Promise<ArchivePushResult> {
  const prepared = prepareWal(opts.walPath, opts.repo.compressor(opts.compression).parallel);
  return storePreparedWal({ ...opts, prepared });
}

/**
 * The store half of archivePush, for a file prepareWal read, checksummed and compressed (maybe in
 * a worker thread): checks it belongs to this cluster, then stores it unless already archived.
 */
export async function storePreparedWal(opts: ArchivePushOptions & { prepared: PreparedWal }): Promise<ArchivePushResult> {
  const { repo, cluster, walPath, prepared } = opts;
  const { walName, sha256, size, header } = prepared;
  const log = opts.logger ?? noopLogger;
  const info = await readClusterInfo(repo, cluster);
  if (SEGMENT_RE.test(walName)) {
    if (header && header.systemIdentifier !== info.systemIdentifier) {
      throw new StrataError(
        'Precondition',
        `WAL segment ${walName} belongs to system ${header.systemIdentifier}, but cluster "${cluster}" in ${repo.describe()} is ${info.systemIdentifier}`,
        { hint: 'archive_command points at the wrong cluster name or repository' },
      );
    }
    if (size !== info.walSegmentSize) {
      throw new StrataError('Integrity', `WAL segment ${walName} has ${size} bytes, expected ${info.walSegmentSize}`);
    }
  }
  const existing = await findWalObjects(repo, cluster, walName);
  const same = checkExisting(existing, walName, sha256, repo);
  // Several copies: the listing is their union, so "archived" may mean "in some copies"; the put
  // below stores it where it is missing (the others answer AlreadyExists).
  if (same && repo.copies.length === 1) {
    return { walName, key: same.key, sha256, size, storedBytes: same.size, alreadyArchived: true };
  }

  const compressor = same ? repo.compressorByExtension(same.extension) : repo.compressor(opts.compression);
  const body = sameCodec(compressor.parallel, prepared.codec) ? prepared.body : await compressor.compress(rawBytes(walPath, prepared));
  const key = same?.key ?? keys.walObject(cluster, walName, sha256, compressor.extension);
  let alreadyArchived = false;
  try {
    await repo.put(key, body, { ifNoneMatch: true });
  } catch (err) {
    if (!(isStrataError(err) && err.code === 'AlreadyExists')) throw err;
    alreadyArchived = same !== undefined;
    log.debug({ key }, 'WAL object already stored with identical content');
  }
  // Another writer may have stored different bytes under this name meanwhile: say so now.
  checkExisting(await findWalObjects(repo, cluster, walName), walName, sha256, repo);
  return { walName, key, sha256, size, storedBytes: body.length, alreadyArchived };
}

/**
 * The file's bytes for a compressor other than the one it was prepared for (an earlier copy
 * stored with another codec): read again, and the same bytes or nothing.
 */
function rawBytes(walPath: string, prepared: PreparedWal): Buffer {
  if (prepared.codec === undefined) return prepared.body;
  const again = prepareWal(walPath, undefined);
  if (again.sha256 !== prepared.sha256) {
    throw new StrataError('Integrity', `WAL file ${walPath} changed while it was being archived`, {
      hint: 'PostgreSQL does not rewrite a WAL file it asked to archive: check what else writes to pg_wal',
    });
  }
  return again.body;
}

function checkExisting(existing: WalObject[], walName: string, sha256: string, repo: Repo): WalObject | undefined {
  const other = existing.find((o) => o.sha256 !== sha256);
  if (other) {
    throw new StrataError(
      'AlreadyExists',
      `${walName} is already archived in ${repo.describe()} with different content (${other.key}); refusing to overwrite it`,
      {
        context: { key: other.key },
        hint: 'two clusters may be archiving into the same cluster name, or the cluster was restored without a new timeline; check archive_command and "strata info"',
      },
    );
  }
  return existing.find((o) => o.sha256 === sha256);
}

/** Fetches an archived WAL file, checks it, and decompresses it. NotFound when not archived. */
export async function fetchWal(repo: Repo, cluster: string, walName: string): Promise<{ data: Buffer; object: WalObject }> {
  if (!isWalFileName(walName)) throw new StrataError('InvalidArgument', `"${walName}" is not a WAL file name`);
  const found = await findWalObjects(repo, cluster, walName);
  if (found.length === 0) {
    throw new StrataError('NotFound', `${walName} is not in ${repo.describe()}`, { context: { walName } });
  }
  if (found.length > 1) {
    throw new StrataError(
      'Integrity',
      `${walName} is archived more than once with different content: ${found.map((f) => f.key).join(', ')}`,
    );
  }
  const object = found[0]!;
  // A copy that lacks it or holds damaged bytes: the next copy serves it.
  const data = await repo.readFrom(object.key, (copy) => readWalObject(copy, object));
  return { data, object };
}

/** One copy's bytes of a WAL object, decompressed and checked against the sha256 in its key. */
export async function readWalObject(copy: Repo, object: WalObject): Promise<Buffer> {
  const raw = await copy.getBuffer(object.key);
  let data: Buffer;
  try {
    data = await copy.compressorByExtension(object.extension).decompress(raw);
  } catch (err) {
    if (isStrataError(err) && err.code === 'ConfigInvalid') throw err;
    throw integrity(object.key, copy, 'does not decompress', err);
  }
  if (createHash('sha256').update(data).digest('hex') !== object.sha256) {
    throw integrity(object.key, copy, 'checksum mismatch');
  }
  return data;
}

function integrity(key: string, repo: Repo, why: string, cause?: unknown): StrataError {
  return new StrataError('Integrity', `WAL object "${key}" in ${repo.describe()} is corrupt: ${why}`, {
    cause,
    context: { key, repo: repo.name },
    hint: 'restore this WAL file from another copy of the repository; recovery cannot go past it',
  });
}

/** archive-get: writes the WAL file to `dest` atomically (temp file, fsync, rename). */
export async function archiveGet(repo: Repo, cluster: string, walName: string, dest: string): Promise<WalObject> {
  const { data, object } = await fetchWal(repo, cluster, walName);
  const tmp = `${dest}.strata-tmp-${randomBytes(4).toString('hex')}`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return object;
}
