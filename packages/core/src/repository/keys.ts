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
