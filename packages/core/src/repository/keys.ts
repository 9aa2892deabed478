/**
 * Object key layout of a repository (docs/format.md). Keys are '/'-separated; labels and WAL
 * names sort lexically in time order.
 */
export const keys = {
  clusterInfo: (cluster: string) => `${cluster}/cluster.info`,
  backupRoot: (cluster: string) => `${cluster}/backup/`,
  backupDir: (cluster: string, label: string) => `${cluster}/backup/${label}/`,
  manifest: (cluster: string, label: string) => `${cluster}/backup/${label}/manifest`,
  pack: (cluster: string, label: string, n: number) => `${cluster}/backup/${label}/pack/${String(n).padStart(6, '0')}`,
  blockMap: (cluster: string, label: string, n: number) => `${cluster}/backup/${label}/blockmap/${String(n).padStart(6, '0')}`,
  walRoot: (cluster: string) => `${cluster}/wal/`,
  /** Restore rehearsal results, one sealed object each, named by start time (YYYYMMDD-HHMMSSmmm). */
  rehearsalRoot: (cluster: string) => `${cluster}/rehearsal/`,
  rehearsal: (cluster: string, id: string) => `${cluster}/rehearsal/${id}`,
  /** Segments (and their .backup/.partial files) live in one directory per timeline + log id. */
  walDir: (cluster: string, walName: string) =>
    /^[0-9A-F]{24}/.test(walName) ? `${cluster}/wal/${walName.slice(0, 16)}/` : `${cluster}/wal/`,
  walObject: (cluster: string, walName: string, sha256: string, extension: string) =>
    `${keys.walDir(cluster, walName)}${walName}-${sha256}.${extension}`,
};

/** Parses a WAL object key's file name back into its parts. */
export function parseWalObjectName(fileName: string): { walName: string; sha256: string; extension: string } | undefined {
  const m = /^(.+)-([0-9a-f]{64})\.([A-Za-z0-9]+)$/.exec(fileName);
  return m ? { walName: m[1]!, sha256: m[2]!, extension: m[3]! } : undefined;
}

/** What an object is, read from its key: every object Strata writes carries this as tags. */
export interface KeyInfo {
  cluster: string;
  kind: 'cluster-info' | 'manifest' | 'pack' | 'blockmap' | 'backup-file' | 'wal' | 'history' | 'rehearsal' | 'other';
  /** The backup label, for objects of a backup. */
  backup?: string;
}

export function describeKey(key: string): KeyInfo {
  const parts = key.split('/');
  const cluster = parts[0] ?? '';
  if (parts[1] === 'cluster.info' && parts.length === 2) return { cluster, kind: 'cluster-info' };
  if (parts[1] === 'backup' && parts[2]) {
    const backup = parts[2];
    const kind = parts[3] === 'manifest' ? 'manifest' : parts[3] === 'pack' ? 'pack' : parts[3] === 'blockmap' ? 'blockmap' : 'backup-file';
    return { cluster, kind, backup };
  }
  if (parts[1] === 'rehearsal') return { cluster, kind: 'rehearsal' };
  if (parts[1] === 'wal') return { cluster, kind: key.endsWith('.history') || /\.history-/.test(key) ? 'history' : 'wal' };
  return { cluster, kind: 'other' };
}
