/**
 * The machine's ceilings for a backup of the benchmark's data, measured in the same run: how fast
 * `zstd -3 -T2` (same level, same parallelism as both tools) compresses the same files, and how
 * fast the disk reads them cold and writes as many bytes (what bounds a restore). Backups are then read as "% of the physical limit".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCommand } from '../harness/postgres.js';
import { median } from './stats.js';

export interface Ceilings {
  /** Files and bytes a backup reads (base/, global/, pg_tblspc/ of the data directory). */
  files: number;
  bytes: number;
  /** Median wall seconds of `zstd -3 -T2` over the files (page cache warm, as the backups run). */
  zstdSeconds: number;
  zstdMiBps: number;
  /** Wall seconds to read the files with the page cache dropped (or bypassed, see coldMethod). */
  coldReadSeconds: number;
  coldReadMiBps: number;
  coldMethod: 'drop_caches' | 'O_DIRECT' | 'unavailable';
  /** Wall seconds to write the same number of bytes to the bench's disk and fsync them (a restore's limit). */
  writeSeconds: number;
  writeMiBps: number;
}

function dataFiles(pgdata: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && fs.statSync(p).isDirectory())) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  for (const top of ['base', 'global', 'pg_tblspc']) if (fs.existsSync(path.join(pgdata, top))) walk(path.join(pgdata, top));
  return out;
}

async function sh(script: string): Promise<number> {
  const started = process.hrtime.bigint();
  const res = await runCommand('/bin/sh', ['-c', script], { timeoutMs: 3_600_000 });
  if (res.code !== 0) throw new Error(`${script} failed (${res.code}): ${res.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Drops the page cache; false when this process may not (not root, read-only /proc). */
export function dropCaches(): boolean {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

export async function measureCeilings(pgdata: string, workDir: string, rounds = 3): Promise<Ceilings> {
  const files = dataFiles(pgdata);
  const bytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
  const list = path.join(workDir, 'ceiling-files.txt');
  fs.writeFileSync(list, files.join('\0'));
  const mib = bytes / 2 ** 20;

  await sh(`xargs -0 cat < '${list}' > /dev/null`); // warm, as the backups find it
  const zstd: number[] = [];
  for (let i = 0; i < rounds; i++) zstd.push(await sh(`xargs -0 cat < '${list}' | zstd -q -3 -T2 -c > /dev/null`));

  let coldMethod: Ceilings['coldMethod'] = 'unavailable';
  let coldReadSeconds = NaN;
  await sh('sync');
  if (dropCaches()) {
    coldMethod = 'drop_caches';
    coldReadSeconds = await sh(`xargs -0 cat < '${list}' > /dev/null`);
  } else {
    // No permission to drop caches: bypass them with O_DIRECT reads, one dd per file.
    coldMethod = 'O_DIRECT';
    coldReadSeconds = await sh(`xargs -0 -I{} dd if={} of=/dev/null bs=1M iflag=direct status=none < '${list}'`).catch(() => NaN);
    if (Number.isNaN(coldReadSeconds)) coldMethod = 'unavailable';
  }
  const writeFile = path.join(workDir, 'ceiling-write');
  const writeSeconds = await sh(`dd if=/dev/zero of='${writeFile}' bs=1M count=${Math.ceil(mib)} conv=fsync status=none`);
  fs.rmSync(writeFile, { force: true });
  // Leave the cache warm again for the measures that follow.
  // (the listed files: pg_wal/archive_status entries come and go while the archiver runs).
  await sh(`xargs -0 cat < '${list}' > /dev/null`);
  fs.rmSync(list, { force: true });
  return {
    files: files.length,
    bytes,
    zstdSeconds: median(zstd),
    zstdMiBps: mib / median(zstd),
    coldReadSeconds,
    coldReadMiBps: mib / coldReadSeconds,
    coldMethod,
    writeSeconds,
    writeMiBps: mib / writeSeconds,
  };
}
