/** The manifest: what a backup holds. Its format is a contract (docs/format.md). */
export const MANIFEST_FORMAT = 1;

export type BackupType = 'full' | 'diff' | 'incr';

/** Where one compressed frame lives. `backup` is absent when it is the manifest's own backup. */
export interface FrameRef {
  pack: number;
  offset: number;
  length: number;
  backup?: string;
}

/**
 * Pages compressed together as one frame: `count` pages from `first`, or exactly the pages listed
 * in `pages` (ascending; an incremental's changed pages). `size` is the frame's uncompressed length
 * (a file's last page may be short). When several super blocks hold a page, the last one listed
 * holds its current content.
 */
export interface SuperBlock extends FrameRef {
  first: number;
  count: number;
  pages?: number[];
  size?: number;
}

export interface BlockMapEntry {
  path: string;
  size: number;
  pageSize: number;
  /** base64 of one 8-byte xxh3-64 digest (big-endian) per page, the last page possibly short. */
  hashes: string;
  superBlocks: SuperBlock[];
}

export interface BlockMapRef {
  object: number;
  index: number;
  backup?: string;
}

export interface ManifestFile {
  /** Relative to PGDATA with '/' separators; tablespace data under pg_tblspc/<oid>/. */
  path: string;
  type: 'file' | 'dir' | 'link';
  mode: number;
  uid: number;
  gid: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  size?: number;
  sha256?: string;
  /** Files of at most one super block: a single frame. */
  data?: FrameRef;
  /** Larger files: their entry in a block map object (of backup `backup`, default this one). */
  blockMap?: BlockMapRef;
  /** Symbolic links: where they point. */
  target?: string;
}

export interface ManifestTablespace {
  oid: number;
  name: string;
  location: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  label: string;
  type: BackupType;
  parent: string | null;
  /** Every other backup whose objects this one's files point into (the chain it depends on). */
  references: string[];
  cluster: string;
  systemIdentifier: string;
  pgVersionNum: number;
  timeline: number;
  walSegmentSize: number;
  startLsn: string;
  stopLsn: string;
  startWal: string;
  stopWal: string;
  startTime: string;
  stopTime: string;
  backupLabel: string;
  tablespaceMap: string | null;
  databases: { oid: number; name: string }[];
  tablespaces: ManifestTablespace[];
  options: {
    compression: string;
    pageSize: number;
    superBlockSize: number;
    pageHash: 'xxh3-64';
    fileHash: 'sha256';
  };
  packs: number;
  /**
   * xxh3-128 (hex) of each pack object, by pack number (absent in manifests written before it was
   * recorded). `strata replicate` checks each pack it copies against it.
   */
  packHashes?: string[];
  blockMaps: { key: string; size: number }[];
  stats: { files: number; bytes: number; repoBytes: number };
  files: ManifestFile[];
}
