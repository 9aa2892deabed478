import { createHash } from 'node:crypto';
import { StrataError, isStrataError } from '../errors/index.js';
import type { Repo } from '../repository/Repo.js';
import { keys, parseWalObjectName } from '../repository/keys.js';
import { listBackupLabels, readManifest } from '../manifest/catalog.js';
import type { FrameRef, Manifest, ManifestFile } from '../manifest/types.js';
import { BlockMapReader } from '../blocks/BlockMapReader.js';
import { PAGE_HASH_BYTES, hashPages } from '../blocks/pageHash.js';
import { pagesOf } from '../blocks/superBlocks.js';
import { fetchWal } from '../wal/archive.js';
import { SEGMENT_RE, parseSegmentName, segmentRange } from '../postgres/walNames.js';
import { readClusterInfo } from '../repository/clusterInfo.js';
import { noopLogger, type Logger } from '../logger.js';

export interface VerifyProblem {
  kind: 'corrupt' | 'missing' | 'gap';
  /** The object key (or WAL segment name for gaps). */
  object: string;
  detail: string;
  backup?: string;
}

export interface WalTimelineReport {
  timeline: number;
  first: string;
  last: string;
  segments: number;
  /** Segments absent between the oldest backup start on this timeline (or the first segment) and the newest. */
  missing: string[];
}

export interface VerifyResult {
  ok: boolean;
  backups: string[];
  objectsChecked: number;
  bytesChecked: number;
  problems: VerifyProblem[];
  wal: WalTimelineReport[];
}

/**
 * Reads every object of the repository (or of one backup and the chain it depends on) and checks
 * every checksum: manifests and block maps (sealed), every frame a backup stored (page digests,
 * whole small files' sha256), every WAL object (sha256 in its key), and the WAL sequence per
 * timeline from each backup's start to the newest segment. Problems are collected, not thrown.
 */
export async function verifyRepository(repo: Repo, cluster: string, opts: { label?: string; logger?: Logger } = {}): Promise<VerifyResult> {
  const log = opts.logger ?? noopLogger;
  const problems: VerifyProblem[] = [];
  const stats = { objects: 0, bytes: 0 };
  const all = await listBackupLabels(repo, cluster);
  let labels = all;
  if (opts.label !== undefined) {
    if (!all.includes(opts.label)) throw new StrataError('NotFound', `backup ${opts.label} is not in ${repo.describe()}`);
    labels = [opts.label];
  }
  const manifests: Manifest[] = [];
  const queue = [...labels];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const label = queue.shift()!;
    if (seen.has(label)) continue;
    seen.add(label);
    try {
      const m = await readManifest(repo, cluster, label);
      stats.objects++;
      manifests.push(m);
      // --set: the chain it depends on is verified too.
      if (opts.label !== undefined) queue.push(...(m.references ?? []));
    } catch (err) {
      problems.push(problemOf(err, keys.manifest(cluster, label), label));
    }
  }
  for (const m of manifests) {
    log.info({ label: m.label }, 'verifying backup');
    await verifyBackup(repo, m, problems, stats);
  }
  const wal = await verifyWal(repo, cluster, opts.label === undefined ? undefined : manifests, manifests, problems, stats);
  return {
    ok: problems.length === 0,
    backups: manifests.map((m) => m.label).sort(),
    objectsChecked: stats.objects,
    bytesChecked: stats.bytes,
    problems,
    wal,
  };
}

function problemOf(err: unknown, object: string, backup?: string): VerifyProblem {
  if (isStrataError(err) && err.code === 'NotFound') return { kind: 'missing', object, detail: 'object does not exist', backup };
  if (isStrataError(err) && err.code === 'Integrity') return { kind: 'corrupt', object, detail: err.message, backup };
  throw err;
}

async function verifyBackup(repo: Repo, m: Manifest, problems: VerifyProblem[], stats: { objects: number; bytes: number }): Promise<void> {
  const maps = new BlockMapReader(repo, m.cluster, m.label);
  const compressor = repo.compressor(m.options.compression);
  const packKey = (ref: FrameRef) => keys.pack(m.cluster, ref.backup ?? m.label, ref.pack);
  const badPacks = new Set<string>();
  const checkedMaps = new Set<number>();
  const digest = Buffer.alloc(PAGE_HASH_BYTES);

  // Verify reads every frame a backup stored: whole packs (a few kept, oldest dropped first) cost
  // one request each instead of one per frame, which on an object store is most of the time.
  const packs = new Map<string, Promise<Buffer>>();
  const pack = (key: string): Promise<Buffer> => {
    let p = packs.get(key);
    if (!p) {
      if (packs.size >= 4) packs.delete(packs.keys().next().value!);
      p = repo.getBuffer(key);
      p.then((b) => (stats.bytes += b.length)).catch(() => undefined);
      packs.set(key, p);
    }
    return p;
  };
  const frame = async (ref: FrameRef, what: string): Promise<Buffer | undefined> => {
    const key = packKey(ref);
    if (badPacks.has(key)) return undefined;
    try {
      const raw = (await pack(key)).subarray(ref.offset, ref.offset + ref.length);
      if (raw.length !== ref.length) throw new StrataError('Integrity', `${key}: frame at ${ref.offset} of ${what} is cut short`);
      return await compressor.decompress(raw);
    } catch (err) {
      const p = problemOf(err, key, m.label);
      if (p.kind === 'missing') badPacks.add(key);
      if (p.kind === 'corrupt') p.detail = `frame at offset ${ref.offset} (${what}): ${p.detail}`;
      problems.push(p);
      return undefined;
    }
  };

  for (const f of m.files.filter((x): x is ManifestFile & { type: 'file' } => x.type === 'file')) {
    // Only what this backup stored itself; its parents' objects are verified with them.
    if (f.data && !f.data.backup) {
      const data = await frame(f.data, f.path);
      if (data && createHash('sha256').update(data).digest('hex') !== f.sha256) {
        problems.push({
          kind: 'corrupt',
          object: packKey(f.data),
          detail: `frame at offset ${f.data.offset} (${f.path}): content does not match its checksum`,
          backup: m.label,
        });
      }
    }
    if (!f.blockMap) continue;
    let entry;
    try {
      entry = await maps.entry(f.blockMap, f.path);
      if (!f.blockMap.backup && !checkedMaps.has(f.blockMap.object)) {
        checkedMaps.add(f.blockMap.object);
        stats.objects++;
      }
    } catch (err) {
      problems.push(problemOf(err, keys.blockMap(m.cluster, f.blockMap.backup ?? m.label, f.blockMap.object), m.label));
      continue;
    }
    const expected = Buffer.from(entry.hashes, 'base64');
    for (const sb of entry.superBlocks) {
      if (sb.backup) continue;
      const data = await frame(sb, f.path);
      if (!data) continue;
      const pages = pagesOf(sb);
      const mismatch = pages.findIndex((page, k) => {
        const bytes = data.subarray(k * entry.pageSize, Math.min((k + 1) * entry.pageSize, data.length));
        hashPages(bytes, entry.pageSize, digest, 0);
        return !digest.equals(expected.subarray(page * PAGE_HASH_BYTES, (page + 1) * PAGE_HASH_BYTES));
      });
      if (mismatch >= 0) {
        problems.push({
          kind: 'corrupt',
          object: packKey(sb),
          detail: `frame at offset ${sb.offset} (${f.path}): page ${pages[mismatch]} does not match its digest`,
          backup: m.label,
        });
      }
    }
  }
  for (let n = 0; n < m.packs; n++) if (!badPacks.has(keys.pack(m.cluster, m.label, n))) stats.objects++;
}

async function verifyWal(
  repo: Repo,
  cluster: string,
  only: Manifest[] | undefined,
  manifests: Manifest[],
  problems: VerifyProblem[],
  stats: { objects: number; bytes: number },
): Promise<WalTimelineReport[]> {
  let segSize: number;
  try {
    segSize = (await readClusterInfo(repo, cluster)).walSegmentSize;
  } catch (err) {
    problems.push(problemOf(err, keys.clusterInfo(cluster)));
    return [];
  }
  const byTimeline = new Map<number, string[]>();
  for await (const o of repo.list(keys.walRoot(cluster))) {
    const parsed = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1));
    if (!parsed) continue;
    const segment = parsed.walName.slice(0, 24);
    // With --set, only the WAL that backup can replay (from its start on).
    if (only && SEGMENT_RE.test(segment) && !only.some((m) => segment >= m.startWal && parseInt(segment.slice(0, 8), 16) >= m.timeline))
      continue;
    try {
      await fetchWal(repo, cluster, parsed.walName);
      stats.objects++;
      stats.bytes += o.size;
    } catch (err) {
      problems.push(problemOf(err, o.key));
    }
    if (SEGMENT_RE.test(parsed.walName)) {
      const tli = parseSegmentName(parsed.walName, segSize).timeline;
      byTimeline.set(tli, [...(byTimeline.get(tli) ?? []), parsed.walName]);
    }
  }
  const reports: WalTimelineReport[] = [];
  for (const [timeline, names] of [...byTimeline].sort((a, b) => a[0] - b[0])) {
    names.sort();
    const starts = manifests.filter((m) => m.timeline === timeline).map((m) => m.startWal);
    const from = [names[0]!, ...starts].sort()[0]!;
    const last = names[names.length - 1]!;
    const present = new Set(names);
    const missing = segmentRange(from, last, segSize).filter((s) => !present.has(s));
    for (const s of missing)
      problems.push({ kind: 'gap', object: s, detail: `WAL segment ${s} of timeline ${timeline} is missing: recovery cannot pass it` });
    reports.push({ timeline, first: names[0]!, last, segments: names.length, missing });
  }
  return reports;
}
