import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import type { BlockMapEntry } from '../manifest/types.js';

/**
 * Block maps of many files are batched into sealed objects of about `flushBytes` each. Kept small:
 * a 1 GiB relation segment alone makes ~1.5 MB of JSON, and every byte held here is peak RSS.
 * Files copied concurrently add entries in any order: object numbers are given out when a batch
 * is cut, so a reference never changes once returned.
 */
export class BlockMapWriter {
  private entries: BlockMapEntry[] = [];
  private pendingBytes = 0;
  private objectNo = 0;
  private readonly writing = new Set<Promise<void>>();
  private readonly sizes: { key: string; size: number }[] = [];

  constructor(
    private readonly repo: Repo,
    private readonly cluster: string,
    private readonly label: string,
    private readonly compression: string,
    private readonly flushBytes = 1024 * 1024,
  ) {}

  /** The objects written, in number order (complete after flush()). */
  get written(): { key: string; size: number }[] {
    return this.sizes;
  }

  async add(entry: BlockMapEntry): Promise<{ object: number; index: number }> {
    const ref = { object: this.objectNo, index: this.entries.length };
    this.entries.push(entry);
    this.pendingBytes += entry.hashes.length + entry.superBlocks.length * 64 + entry.path.length;
    if (this.pendingBytes >= this.flushBytes) await this.cut();
    return ref;
  }

  /** Writes what is batched and waits for every write. */
  async flush(): Promise<void> {
    await this.cut();
    while (this.writing.size > 0) await Promise.all(this.writing);
  }

  private async cut(): Promise<void> {
    if (this.entries.length === 0) return;
    const entries = this.entries;
    const no = this.objectNo++;
    const key = keys.blockMap(this.cluster, this.label, no);
    this.entries = [];
    this.pendingBytes = 0;
    const write = this.repo.putSealed(key, 'blockmap', entries, this.compression, { ifNoneMatch: true }).then((size) => {
      this.sizes[no] = { key, size };
    });
    this.writing.add(write);
    try {
      await write;
    } finally {
      this.writing.delete(write);
    }
  }
}
