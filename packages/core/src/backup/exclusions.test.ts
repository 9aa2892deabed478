import { describe, expect, it } from 'vitest';
import { EXCLUDED_DIR_CONTENTS, EXCLUDED_TOP_FILES, excludedRelationFiles, isDatabaseDir, isExcludedAnywhere } from './exclusions.js';

describe('excludedRelationFiles', () => {
  const names = [
    'PG_VERSION',
    'pg_filenode.map',
    '1259',
    '1259_fsm',
    '1259_vm',
    '1259.1',
    // unlogged relation 16384: only its init fork is kept
    '16384',
    '16384.1',
    '16384.2',
    '16384_fsm',
    '16384_vm',
    '16384_init',
    '16384_init.1',
    // a logged relation whose number starts like the unlogged one
    '163840',
    '163840_fsm',
    // temporary relations of backend 3
    't3_16400',
    't3_16400.1',
    't3_16400_fsm',
    't3_16400_vm',
    't3_16400_init',
  ];

  it('drops the main, fsm, vm forks and segments of unlogged relations, and all of temp relations', () => {
    expect([...excludedRelationFiles(names)].sort()).toEqual(
      [
        '16384',
        '16384.1',
        '16384.2',
        '16384_fsm',
        '16384_vm',
        't3_16400',
        't3_16400.1',
        't3_16400_fsm',
        't3_16400_vm',
        't3_16400_init',
      ].sort(),
    );
  });

  it('keeps init forks, logged relations and other files', () => {
    const excluded = excludedRelationFiles(names);
    for (const kept of [
      '16384_init',
      '16384_init.1',
      '163840',
      '163840_fsm',
      '1259',
      '1259_vm',
      '1259.1',
      'PG_VERSION',
      'pg_filenode.map',
    ]) {
      expect(excluded.has(kept), kept).toBe(false);
    }
  });

  it('excludes nothing where no relation is unlogged or temporary', () => {
    expect(excludedRelationFiles(['1259', '1259_fsm', '2608', 'PG_VERSION']).size).toBe(0);
  });
});

describe('isExcludedAnywhere', () => {
  it.each([
    ['pg_internal.init', true],
    ['pgsql_tmp', true],
    ['pgsql_tmp12345.0', true],
    ['pg_internal.init.1', false],
    ['my_pgsql_tmp', false],
    ['16384', false],
  ])('%s → %s', (name, excluded) => expect(isExcludedAnywhere(name)).toBe(excluded));
});

describe('isDatabaseDir', () => {
  it.each([
    ['base/1', true],
    ['base/16384', true],
    ['pg_tblspc/16500/PG_16_202307071/16385', true],
    ['base', false],
    ['base/1/2', false],
    ['base/pgsql_tmp', false],
    ['global', false],
    ['pg_tblspc/16500', false],
    ['pg_tblspc/16500/PG_16_202307071', false],
  ])('%s → %s', (rel, db) => expect(isDatabaseDir(rel)).toBe(db));
});

describe('exclusion lists', () => {
  it('skip the contents of directories PostgreSQL rebuilds, and files a restore must not inherit', () => {
    for (const dir of ['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_subtrans', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_dynshmem']) {
      expect(EXCLUDED_DIR_CONTENTS.has(dir), dir).toBe(true);
    }
    for (const file of ['postmaster.pid', 'postmaster.opts', 'recovery.signal', 'standby.signal', 'backup_label', 'tablespace_map']) {
      expect(EXCLUDED_TOP_FILES.has(file), file).toBe(true);
    }
    for (const kept of ['pg_xact', 'pg_multixact', 'global', 'base', 'pg_tblspc'])
      expect(EXCLUDED_DIR_CONTENTS.has(kept), kept).toBe(false);
  });
});
