import { toStrataError, type StrataError } from '../errors/index.js';
import type { ObjectInfo } from '../plugins/contract.js';
import { describeKey } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import { LABEL_RE } from '../manifest/label.js';

/** What one copy holds of a cluster, read from the copy itself (a listing). */
export interface Inventory {
  repo: Repository;
  /** Every object under `<cluster>/`, by key; undefined when the copy could not be listed. */
  objects?: Map<string, ObjectInfo>;
  error?: StrataError;
}

/** What every copy should hold: the union of what the copies hold that is worth keeping. */
export interface Wanted {
  /** cluster.info, WAL and history files, rehearsal results. */
  loose: string[];
  /** Committed backups (a manifest in some copy), oldest first, with every object of each. */
  backups: Map<string, string[]>;
}

/** What a copy misses of `Wanted`. */
export interface Missing {
  /** Backups it lacks entirely or in part (its manifest or any object). */
  backups: string[];
  wal: string[];
  /** Every missing key (WAL, backups' objects, cluster.info, rehearsals). */
  objects: string[];
}

export async function takeInventory(copies: readonly Repository[], cluster: string): Promise<Inventory[]> {
  return Promise.all(
    copies.map(async (repo) => {
      try {
        const objects = new Map<string, ObjectInfo>();
        for (const o of await repo.listAll(`${cluster}/`)) objects.set(o.key, o);
        return { repo, objects };
      } catch (err) {
        return { repo, error: toStrataError(err, 'Unavailable', 'list') };
      }
    }),
  );
}

/**
 * The union over reachable copies. An interrupted backup (objects, no manifest in any copy) is
 * not wanted: nothing can restore it.
 */
export function wantedOf(inventories: readonly Inventory[]): Wanted {
  const loose = new Set<string>();
  const backupObjects = new Map<string, Set<string>>();
  const committed = new Set<string>();
  for (const inv of inventories) {
    for (const key of inv.objects?.keys() ?? []) {
      const info = describeKey(key);
      if (info.backup) {
        if (!LABEL_RE.test(info.backup)) continue;
        const set = backupObjects.get(info.backup) ?? new Set<string>();
        set.add(key);
        backupObjects.set(info.backup, set);
        if (info.kind === 'manifest') committed.add(info.backup);
      } else if (info.kind === 'cluster-info' || info.kind === 'wal' || info.kind === 'history' || info.kind === 'rehearsal') {
        loose.add(key);
      }
    }
  }
  const backups = new Map<string, string[]>();
  for (const label of [...committed].sort()) backups.set(label, [...backupObjects.get(label)!].sort());
  return { loose: [...loose].sort(), backups };
}

export function missingIn(inv: Inventory, wanted: Wanted): Missing {
  const has = (k: string) => inv.objects?.has(k) ?? false;
  const objects: string[] = [];
  const wal: string[] = [];
  for (const key of wanted.loose) {
    if (has(key)) continue;
    objects.push(key);
    const kind = describeKey(key).kind;
    if (kind === 'wal' || kind === 'history') wal.push(key);
  }
  const backups: string[] = [];
  for (const [label, list] of wanted.backups) {
    const lacking = list.filter((k) => !has(k));
    if (lacking.length) {
      backups.push(label);
      objects.push(...lacking);
    }
  }
  return { backups, wal, objects };
}
