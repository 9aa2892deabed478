import { keys } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import type { BlockMapEntry } from '../manifest/types.js';

/**
 * Block maps of many files are batched into sealed objects of about `flushBytes` each. Kept small:
 * a 1 GiB relation segment alone makes ~1.5 MB of JSON, and every byte held here is peak RSS.
 */
export class BlockMapWriter {
  private entries: BlockMapEntry[] = [];
  private pendingBytes = 0;
  readonly written: { key: string; size: number }[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly cluster: string,
    private readonly label: string,
    private readonly compression: string,
    private readonly flushBytes = 1024 * 1024,
  ) {}

  async add(entry: BlockMapEntry): Promise<{ object: number; index: number }> {
    const ref = { object: this.written.length, index: this.entries.length };
    this.entries.push(entry);
    this.pendingBytes += entry.hashes.length + entry.superBlocks.length * 64 + entry.path.length;
    if (this.pendingBytes >= this.flushBytes) await this.flush();
    return ref;
  }

  async flush(): Promise<void> {
    if (this.entries.length === 0) return;
    const key = keys.blockMap(this.cluster, this.label, this.written.length);
    const size = await this.repo.putSealed(key, 'blockmap', this.entries, this.compression, { ifNoneMatch: true });
    this.written.push({ key, size });
    this.entries = [];
    this.pendingBytes = 0;
  }
}
