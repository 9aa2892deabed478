import * as fs from 'node:fs';
import * as path from 'node:path';
import { BlockMapReader, Repository, readManifest, zstdPlugin, type Manifest } from '@strata/core';
import { FsBackend } from '@strata/plugin-fs';

/** Reads a backup straight from a filesystem repository, to check what it stored. */
export async function openBackup(
  repoDir: string,
  label: string,
  cluster = 'main',
): Promise<{ manifest: Manifest; blockMaps: BlockMapReader }> {
  const repo = new Repository(
    'test',
    new FsBackend({ path: repoDir, fsync: false }, '/'),
    new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]),
  );
  return { manifest: await readManifest(repo, cluster, label), blockMaps: new BlockMapReader(repo, cluster, label) };
}

/**
 * The object files of a filesystem repository, relative to its root — without the tag sidecars
 * the fs plugin keeps under .strata-tags/ (they describe objects; they are not objects).
 */
export function repoObjectFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (dir === base && e.name === '.strata-tags') return [];
    const p = path.join(dir, e.name);
    return e.isDirectory() ? repoObjectFiles(p, base) : [path.relative(base, p)];
  });
}
