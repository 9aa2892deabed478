import type { Repo } from '../repository/Repo.js';
import type { Manifest, ManifestFile } from '../manifest/types.js';
import { BlockMapReader } from '../blocks/BlockMapReader.js';
import type { ParentPages } from './fileCopier.js';
import type { ScanEntry } from './scan.js';

/**
 * The parent backup's files, for change detection. A file whose size and mtime match is
 * referenced, not read — but only when the parent saw it unmodified for over a second before its
 * own start: a write in the same mtime tick as the parent's copy would otherwise go unnoticed
 * (filesystems with coarse timestamps), so such files are read and compared page by page.
 */
export class PreviousFiles {
  private readonly files: Map<string, ManifestFile>;
  private readonly maps: BlockMapReader;
  private readonly safeBefore: number;

  constructor(
    repo: Repo,
    private readonly parent: Manifest,
  ) {
    this.files = new Map(parent.files.filter((f) => f.type === 'file').map((f) => [f.path, f]));
    this.maps = new BlockMapReader(repo, parent.cluster, parent.label);
    this.safeBefore = new Date(parent.startTime).getTime() - 1000;
  }

  /** The parent's entry, pointing at the backups that hold its data, when the file is unchanged. */
  unchanged(entry: ScanEntry): ManifestFile | undefined {
    const p = this.files.get(entry.path);
    if (!p || p.size !== entry.stat.size || p.mtime !== Math.floor(entry.stat.mtimeMs) || p.mtime >= this.safeBefore) return undefined;
    const holder = this.parent.label;
    return {
      ...p,
      ...(p.data ? { data: { ...p.data, backup: p.data.backup ?? holder } } : {}),
      ...(p.blockMap ? { blockMap: { ...p.blockMap, backup: p.blockMap.backup ?? holder } } : {}),
    };
  }

  /** The parent's pages of a changed file, when it had a block map. */
  async pages(path: string): Promise<ParentPages | undefined> {
    const p = this.files.get(path);
    if (!p?.blockMap) return undefined;
    const holder = p.blockMap.backup ?? this.parent.label;
    return { map: await this.maps.entry(p.blockMap, path), holder };
  }
}
