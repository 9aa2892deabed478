import { createHash } from 'node:crypto';
import { StrataError, isStrataError } from '../errors/index.js';
import { describeKey, keys, parseWalObjectName } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import type { MissQueue } from '../repository/MissQueue.js';
import type { Manifest } from '../manifest/types.js';
import { packHash } from '../blocks/PackWriter.js';
import { REHEARSAL_KIND } from '../rehearsal/rehearsalStore.js';
import { noopLogger, type Logger } from '../logger.js';
import { Lanes } from '../pipeline/Lanes.js';
import { missingIn, takeInventory, wantedOf } from './inventory.js';

export interface ReplicateOptions {
  cluster: string;
  /** Copies to read from, in order of preference (a failing one falls back to the next). */
  sources: readonly Repository[];
  target: Repository;
  /** Cleared of what this run copied, when the target is level afterwards. */
  queue?: MissQueue;
  /** Objects copied at the same time (default 4; packs are read whole). */
  concurrency?: number;
  logger?: Logger;
}

export interface ReplicateResult {
  target: string;
  /** Objects copied (verified on the way). */
  copied: number;
  bytes: number;
  /** Backups the target now holds that it lacked. */
  backups: string[];
  wal: number;
  /** Objects no source could provide intact; their backups stay invisible on the target. */
  failed: { key: string; reason: string }[];
  /** Nothing was missing or everything missing was copied. */
  level: boolean;
}

const SEALED_KIND: Partial<Record<ReturnType<typeof describeKey>['kind'], string>> = {
  manifest: 'manifest',
  blockmap: 'blockmap',
  'cluster-info': 'cluster',
  rehearsal: REHEARSAL_KIND,
};

/**
 * Copies whatever `target` misses of one cluster from the sources: cluster.info first, WAL and
 * rehearsal results, then each committed backup oldest first with its manifest last, so an
 * interrupted run leaves nothing half-visible and a rerun copies only what is still missing.
 * Every object is checked before it is written (sealed objects: their checksum; WAL: the sha256
 * in its key; packs: the manifest's pack checksums); a damaged source copy falls back to the next.
 */
export async function replicate(opts: ReplicateOptions): Promise<ReplicateResult> {
  const log = opts.logger ?? noopLogger;
  const { cluster, target } = opts;
  const queued = opts.queue ? (await opts.queue.pending(target.name)).length : 0;
  const [targetInv, ...sourceInvs] = await takeInventory([target, ...opts.sources], cluster);
  if (targetInv!.error) throw targetInv!.error;
  // The target answers again: writers stop skipping it.
  await opts.queue?.markUp(target.name);
  const reachable = sourceInvs.filter((s) => s.objects);
  if (reachable.length === 0) {
    const why = sourceInvs.map((s) => `${s.repo.name}: ${s.error?.message}`).join('; ');
    throw new StrataError('Unavailable', `no repository to replicate "${cluster}" from is reachable: ${why}`);
  }
  const wanted = wantedOf(reachable);
  const missing = missingIn(targetInv!, wanted);
  const result: ReplicateResult = { target: target.name, copied: 0, bytes: 0, backups: [], wal: 0, failed: [], level: true };
  if (missing.objects.length === 0) {
    if (opts.queue && queued) await opts.queue.clear(target.name, queued);
    return result;
  }
  log.info({ target: target.name, objects: missing.objects.length, backups: missing.backups.length }, 'replicating');
  const lacking = new Set(missing.objects);
  const holders = (key: string) => reachable.filter((s) => s.objects!.has(key)).map((s) => s.repo);

  const copyOne = async (key: string, verify: (source: Repository, raw: Buffer) => Promise<void>): Promise<boolean> => {
    const reasons: string[] = [];
    for (const source of holders(key)) {
      try {
        const raw = await source.getBuffer(key);
        await verify(source, raw);
        try {
          await target.put(key, raw, { ifNoneMatch: true });
        } catch (err) {
          if (!(isStrataError(err) && err.code === 'AlreadyExists')) throw err;
        }
        result.copied++;
        result.bytes += raw.length;
        return true;
      } catch (err) {
        // The target failing is fatal; a source failing falls back to the next source.
        if (isStrataError(err) && err.context.repo === target.name) throw err;
        const reason = `${source.name}: ${(err as Error).message}`;
        reasons.push(reason);
        log.warn({ key, source: source.name, err: (err as Error).message }, 'source copy unusable; trying the next');
      }
    }
    result.failed.push({ key, reason: reasons.join('; ') || 'no source holds it' });
    return false;
  };

  // cluster.info, WAL, history, rehearsals (cluster.info sorts after nothing it depends on).
  const loose = wanted.loose.filter((k) => lacking.has(k));
  loose.sort((a, b) => Number(describeKey(b).kind === 'cluster-info') - Number(describeKey(a).kind === 'cluster-info'));
  await eachLimited(loose, opts.concurrency ?? 4, async (key) => {
    const ok = await copyOne(key, (source, raw) => verifyLoose(source, key, raw));
    if (ok && describeKey(key).kind !== 'cluster-info' && describeKey(key).kind !== 'rehearsal') result.wal++;
  });

  for (const label of missing.backups) {
    const manifestKey = keys.manifest(cluster, label);
    let manifest: Manifest | undefined;
    for (const s of holders(manifestKey)) {
      try {
        manifest = await s.readSealed<Manifest>(manifestKey, 'manifest');
        break;
      } catch (err) {
        log.warn({ key: manifestKey, source: s.name, err: (err as Error).message }, 'source manifest unusable; trying the next');
      }
    }
    if (!manifest) {
      result.failed.push({ key: manifestKey, reason: 'no source holds an intact manifest' });
      continue;
    }
    const objects = wanted.backups.get(label)!.filter((k) => k !== manifestKey && lacking.has(k));
    let complete = true;
    await eachLimited(objects, opts.concurrency ?? 4, async (key) => {
      const ok = await copyOne(key, (source, raw) => verifyBackupObject(source, key, raw, manifest));
      if (!ok) complete = false;
    });
    // The manifest makes the backup visible: only once every object it needs is there.
    if (complete && lacking.has(manifestKey)) {
      if (await copyOne(manifestKey, (source, raw) => verifySealed(source, manifestKey, raw))) result.backups.push(label);
    }
  }
  result.level = result.failed.length === 0;
  if (result.level && opts.queue && queued) await opts.queue.clear(target.name, queued);
  log.info({ target: target.name, copied: result.copied, bytes: result.bytes, failed: result.failed.length }, 'replication finished');
  return result;
}

async function verifySealed(checker: Repository, key: string, raw: Buffer): Promise<void> {
  const kind = SEALED_KIND[describeKey(key).kind];
  if (kind) await checker.openSealed(raw, key, kind);
}

async function verifyLoose(checker: Repository, key: string, raw: Buffer): Promise<void> {
  const info = describeKey(key);
  if (info.kind !== 'wal' && info.kind !== 'history') return verifySealed(checker, key, raw);
  const parsed = parseWalObjectName(key.slice(key.lastIndexOf('/') + 1));
  if (!parsed) return;
  let data: Buffer;
  try {
    data = await checker.compressorByExtension(parsed.extension).decompress(raw);
  } catch (err) {
    throw new StrataError('Integrity', `WAL object "${key}" does not decompress`, { cause: err });
  }
  if (createHash('sha256').update(data).digest('hex') !== parsed.sha256) {
    throw new StrataError('Integrity', `WAL object "${key}" does not match the checksum in its name`);
  }
}

async function verifyBackupObject(checker: Repository, key: string, raw: Buffer, manifest: Manifest): Promise<void> {
  const info = describeKey(key);
  if (info.kind !== 'pack') return verifySealed(checker, key, raw);
  const n = Number(key.slice(key.lastIndexOf('/') + 1));
  const expected = manifest.packHashes?.[n];
  if (expected && packHash(raw) !== expected) {
    throw new StrataError('Integrity', `pack "${key}" does not match the checksum in its manifest`);
  }
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const lanes = new Lanes(limit);
  for (const item of items) await lanes.run(() => fn(item));
  await lanes.drain();
}
