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
