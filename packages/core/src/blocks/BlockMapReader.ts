import { StrataError } from '../errors/index.js';
import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import type { BlockMapEntry, BlockMapRef } from '../manifest/types.js';

/**
 * Reads block map entries of one cluster, across the backups of a chain. Files are visited in
 * manifest order, so a few cached objects serve nearly every lookup.
 */
export class BlockMapReader {
  private cache = new Map<string, BlockMapEntry[]>();

  constructor(
    private readonly repo: Repo,
    private readonly cluster: string,
    /** The backup whose manifest holds the refs: the default for refs without `backup`. */
    private readonly ownLabel: string,
    private readonly cacheSize = 4,
  ) {}

  async entry(ref: BlockMapRef, path: string): Promise<BlockMapEntry> {
    const label = ref.backup ?? this.ownLabel;
    const key = keys.blockMap(this.cluster, label, ref.object);
    let entries = this.cache.get(key);
    if (!entries) {
      entries = await this.repo.readSealed<BlockMapEntry[]>(key, 'blockmap');
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, entries);
    }
    const entry = entries[ref.index];
    if (!entry || entry.path !== path) {
      throw new StrataError('Integrity', `block map "${key}" has no entry ${ref.index} for ${path}`, { context: { key } });
    }
    return entry;
  }
}
