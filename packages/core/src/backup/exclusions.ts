/**
 * What PostgreSQL documents as safe to leave out of a base backup ("Backing up the data
 * directory" in the manual, and what pg_basebackup skips). Directories keep their entry, only
 * their contents are skipped.
 */
export const EXCLUDED_DIR_CONTENTS = new Set([
  'pg_wal',
  'pg_dynshmem',
  'pg_notify',
  'pg_replslot',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);

/** Files at the top of PGDATA that are never copied. */
export const EXCLUDED_TOP_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label', // a leftover of an exclusive backup; the real one comes from pg_backup_stop
  'backup_label.old',
  'tablespace_map',
  'tablespace_map.old',
  'recovery.signal', // written by restore when wanted, never inherited
  'standby.signal',
  'recovery.done',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
]);

/** Excluded anywhere: relcache init files and temporary files. */
export function isExcludedAnywhere(name: string): boolean {
  return name === 'pg_internal.init' || name.startsWith('pgsql_tmp');
}

/** Temporary relations: t<backend>_<relfilenode>[_fork][.segment]. */
const TEMP_RELATION_RE = /^t\d+_\d+(_(fsm|vm|init))?(\.\d+)?$/;
const RELATION_RE = /^(\d+)(_(fsm|vm|init))?(\.\d+)?$/;
const INIT_FORK_RE = /^(\d+)_init$/;

/**
 * In a database directory, unlogged relations are reset from their init fork at recovery: only
 * the init fork is kept. Returns the names to skip among `names`.
 */
export function excludedRelationFiles(names: string[]): Set<string> {
  const unlogged = new Set<string>();
  for (const n of names) {
    const m = INIT_FORK_RE.exec(n);
    if (m) unlogged.add(m[1]!);
  }
  const out = new Set<string>();
  for (const n of names) {
    if (TEMP_RELATION_RE.test(n)) {
      out.add(n);
      continue;
    }
    const m = RELATION_RE.exec(n);
    if (m && unlogged.has(m[1]!) && m[3] !== 'init') out.add(n);
  }
  return out;
}

/** Is this relative directory a database directory (base/<oid> or a tablespace's <oid>)? */
export function isDatabaseDir(relPath: string): boolean {
  return /^base\/\d+$/.test(relPath) || /^pg_tblspc\/\d+\/[^/]+\/\d+$/.test(relPath);
}
