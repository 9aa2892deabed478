import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import * as path from 'node:path';
import {
  ArchiveSpool,
  StrataError,
  fileIdentity,
  spoolDir,
  unreadableWal,
  walNameOf,
  type ArchivePushResult,
  type Logger,
} from '@strata/core/base';
import type { ClusterContext, GlobalFlags } from '../cli/context.js';
import { BIN } from '../self.js';

/** The hidden command bin/run.js runs as the background pusher (archive/pusher.ts). */
export const PUSHER_COMMAND = 'archive-push-async';

const POLL_MS = 5;
const RESPAWN_CHECK_MS = 1000;

/** The spool of this cluster and repository (archive.spoolPath/<cluster>/<repo>/archive-push). */
export function spoolFor(ctx: ClusterContext, flags: GlobalFlags): ArchiveSpool {
  const { config } = ctx.loaded;
  const repo = flags.repo ?? config.repos[0]!.name;
  if (!config.repos.some((r) => r.name === repo)) {
    throw new StrataError('InvalidArgument', `no repository "${repo}" in the config; configured: ${config.repos.map((r) => r.name).join(', ')}`);
  }
  return new ArchiveSpool(spoolDir(path.resolve(ctx.loaded.dir, config.archive.spoolPath!), ctx.clusterName, repo));
}

/**
 * archive-push in async mode: answers from the spool when the background pusher has already
 * stored the file (or failed to), otherwise makes sure a pusher runs and waits for its verdict.
 * Exits 0 only on a stored marker for this very file.
 */
export async function pushAsync(ctx: ClusterContext, flags: GlobalFlags, walPath: string, logger: Logger): Promise<ArchivePushResult> {
  const walName = walNameOf(walPath);
  try {
    await fileIdentity(walPath);
  } catch (err) {
    throw unreadableWal(walPath, err);
  }
  const spool = spoolFor(ctx, flags);
  const deadline = Date.now() + ctx.loaded.config.archive.timeout * 1000;
  let checked = 0;
  for (;;) {
    const state = await spool.take(walPath);
    if (state?.kind === 'stored') return state.result;
    if (state?.kind === 'error') throw state.error;
    const now = Date.now();
    if (now - checked >= RESPAWN_CHECK_MS) {
      checked = now;
      if (spool.holder() === undefined) {
        await spool.create();
        startPusher(spool, ctx, flags, path.dirname(path.resolve(walPath)), logger);
      }
    }
    if (now > deadline) {
      throw new StrataError(
        'Timeout',
        `${walName} was not stored by the background pusher within ${ctx.loaded.config.archive.timeout} s`,
        { hint: `see ${path.join(spool.dir, 'pusher.log')}; PostgreSQL will call archive-push again`, context: { walName } },
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function startPusher(spool: ArchiveSpool, ctx: ClusterContext, flags: GlobalFlags, walDir: string, logger: Logger): void {
  const args = [...process.execArgv, BIN, PUSHER_COMMAND, walDir, '--config', ctx.loaded.path, '--cluster', ctx.clusterName];
  if (flags.repo !== undefined) args.push('--repo', flags.repo);
  if (flags['log-level'] !== undefined) args.push('--log-level', flags['log-level']);
  const log = openSync(path.join(spool.dir, 'pusher.log'), 'a', 0o600);
  try {
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', log], cwd: walDir });
    child.on('error', (err) => logger.error({ err: err.message }, 'cannot start the background pusher'));
    child.unref();
    logger.debug({ pid: child.pid, walDir }, 'started the background pusher');
  } finally {
    closeSync(log);
  }
}
