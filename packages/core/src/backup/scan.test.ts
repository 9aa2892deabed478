import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStrataError } from '../testing/assertions.js';
import { scanDataDir, type ScanEntry } from './scan.js';

/** Creates files (content = path) and directories (trailing '/') under root. */
async function makeTree(root: string, entries: string[]): Promise<void> {
  for (const e of entries) {
    const abs = path.join(root, e);
    if (e.endsWith('/')) await fs.mkdir(abs, { recursive: true });
    else {
      await fs.mkdir(path.dirname(abs), { recursive: true });
      await fs.writeFile(abs, e);
    }
  }
}

async function scan(pgdata: string): Promise<ScanEntry[]> {
  const out: ScanEntry[] = [];
  for await (const e of scanDataDir(pgdata)) out.push(e);
  return out;
}

describe('scanDataDir', () => {
  let tmp: string;
  let pgdata: string;
  let tablespace: string;
  let entries: ScanEntry[];

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(tmpdir(), 'strata-scan-'));
    pgdata = path.join(tmp, 'pgdata');
    tablespace = path.join(tmp, 'ts1');
    await makeTree(pgdata, [
      'PG_VERSION',
      'postgresql.conf',
      'postgresql.auto.conf',
      'postmaster.pid',
      'postmaster.opts',
      'recovery.signal',
      'standby.signal',
      'backup_label',
      'base/1/PG_VERSION',
      'base/1/1259',
      'base/1/1259_fsm',
      'base/1/16384',
      'base/1/16384_init',
      'base/1/16384_vm',
      'base/1/t3_16400',
      'base/1/pg_internal.init',
      'base/pgsql_tmp/pgsql_tmp123.0',
      'global/pg_control',
      'global/pg_internal.init',
      'pg_wal/000000010000000000000001',
      'pg_wal/archive_status/000000010000000000000001.done',
      'pg_stat_tmp/global.stat',
      'pg_replslot/slot1/state',
      'pg_xact/0000',
      'pg_tblspc/',
    ]);
    await makeTree(tablespace, ['PG_16_202307071/16385/16386', 'PG_16_202307071/16385/16387', 'PG_16_202307071/16385/16387_init']);
    await fs.symlink(tablespace, path.join(pgdata, 'pg_tblspc', '16500'));
    entries = await scan(pgdata);
  });

  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('yields what a base backup needs, depth first in sorted order, and nothing else', () => {
    expect(entries.map((e) => `${e.type} ${e.path}`)).toEqual([
      'file PG_VERSION',
      'dir base',
      'dir base/1',
      'file base/1/1259',
      'file base/1/1259_fsm',
      'file base/1/16384_init',
      'file base/1/PG_VERSION',
      'dir global',
      'file global/pg_control',
      'dir pg_replslot',
      'dir pg_stat_tmp',
      'dir pg_tblspc',
      'link pg_tblspc/16500',
      'dir pg_tblspc/16500/PG_16_202307071',
      'dir pg_tblspc/16500/PG_16_202307071/16385',
      'file pg_tblspc/16500/PG_16_202307071/16385/16386',
      'file pg_tblspc/16500/PG_16_202307071/16385/16387_init',
      'dir pg_wal',
      'dir pg_wal/archive_status',
      'dir pg_xact',
      'file pg_xact/0000',
      'file postgresql.auto.conf',
      'file postgresql.conf',
    ]);
  });

  it('gives absolute paths and stats of what it yields', async () => {
    const control = entries.find((e) => e.path === 'global/pg_control')!;
    expect(control.absPath).toBe(path.join(pgdata, 'global', 'pg_control'));
    expect(control.stat.size).toBe('global/pg_control'.length);
  });

  it('reports a tablespace link with its target, and walks the target as pg_tblspc/<oid>/...', () => {
    const link = entries.find((e) => e.path === 'pg_tblspc/16500')!;
    expect(link.target).toBe(tablespace);
    expect(link.stat.isSymbolicLink()).toBe(true);
    const file = entries.find((e) => e.path === 'pg_tblspc/16500/PG_16_202307071/16385/16386')!;
    expect(file.type).toBe('file');
  });

  it('reports pg_wal linked to another disk as a directory, without its contents', async () => {
    const other = path.join(tmp, 'linked');
    const walDisk = path.join(tmp, 'waldisk');
    await makeTree(other, ['PG_VERSION']);
    await makeTree(walDisk, ['000000010000000000000001', 'archive_status/']);
    await fs.symlink(walDisk, path.join(other, 'pg_wal'));
    expect((await scan(other)).map((e) => `${e.type} ${e.path}`)).toEqual(['file PG_VERSION', 'dir pg_wal']);
  });

  it('reports other symbolic links as links without following them', async () => {
    const other = path.join(tmp, 'otherlinks');
    await makeTree(other, ['conf/real.conf']);
    await fs.symlink(path.join(other, 'conf'), path.join(other, 'conf-link'));
    const found = await scan(other);
    expect(found.map((e) => `${e.type} ${e.path}`)).toEqual(['dir conf', 'file conf/real.conf', 'link conf-link']);
  });

  it('refuses a data directory that does not exist instead of yielding an empty backup', async () => {
    const missing = path.join(tmp, 'missing');
    const err = await expectStrataError(() => scan(missing), 'NotFound');
    expect(err.message).toContain(missing);
    expect(err.hint).toMatch(/pgdata/);
    await expectStrataError(() => scan(path.join(pgdata, 'PG_VERSION')), 'NotFound');
  });
});
