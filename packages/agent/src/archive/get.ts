import * as path from 'node:path';
import { archiveGet, type Logger, type WalObject } from '@strata/core/base';
import { openContext, type GlobalFlags } from '../cli/context.js';

/** archive-get, shared by the oclif command and the fast path (archive/fastPath.ts). */
export async function runArchiveGet(flags: GlobalFlags, walName: string, dest: string, logger: Logger): Promise<WalObject> {
  const { clusterName, repo } = await openContext(flags, logger);
  return archiveGet(repo, clusterName, walName, path.resolve(dest));
}
