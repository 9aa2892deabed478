import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { ArchivePushResult, Logger } from '@strata/core/base';
import { StrataError } from '@strata/core/errors';
import { lightFs } from '@strata/core/lightFs';
import { unreadableWal, walNameOf } from '@strata/core/wal/walFile';
import type { WalCodec } from '@strata/core/wal/prepare';
import { ArchiveSpool, fileIdentity, spoolDir } from '@strata/core/wal/spool';
import type { ClusterContext, GlobalFlags } from '../cli/context.js';
import { BIN } from '../self.js';

/**
 * The client half of asynchronous archiving: what archive-push does when archive.async is on.
 * It imports nothing heavy (no config parser, no schemas, no storage plugin): with a cached
 * target (archive/targetCache.ts) it runs in little more than Node's own start-up, so PostgreSQL's
 * one-file-at-a-time archiver can keep up with a pusher storing files in parallel.
 */

/** The hidden command bin/run.js runs as the background pusher (archive/pusher.ts). */
export const PUSHER_COMMAND = 'archive-push-async';

/** Everything the client needs from the config. */
export interface AsyncTarget {
  configPath: string;
  clusterName: string;
  /** --repo as given (the pusher is started with the same). */
  repo?: string;
  spoolDir: string;
  timeoutSeconds: number;
  /** archive.processMax: the pusher starts its workers from this without parsing the config. */
  processMax: number;
  /**
   * The configured compressor as a codec core runs (undefined for a third-party one): the pusher's
   * workers compress with it before the pusher has loaded the config.
   */
  codec?: WalCodec;
}

const POLL_MS = 5;
const RESPAWN_CHECK_MS = 1000;
const LOG_ROTATE_BYTES = 16 * 1024 * 1024;

export function asyncTargetOf(ctx: ClusterContext, flags: GlobalFlags, codec: WalCodec | undefined): AsyncTarget {
  const { config } = ctx.loaded;
  // Without --repo the pusher writes to every repository: its spool is named after all of them.
  const repo = flags.repo ?? config.repos.map((r) => r.name).join('+');
  if (flags.repo !== undefined && !config.repos.some((r) => r.name === repo)) {
    throw new StrataError(
      'InvalidArgument',
      `no repository "${repo}" in the config; configured: ${config.repos.map((r) => r.name).join(', ')}`,
    );
  }
  return {
    configPath: ctx.loaded.path,
    clusterName: ctx.clusterName,
    repo: flags.repo,
    spoolDir: spoolDir(path.resolve(ctx.loaded.dir, config.archive.spoolPath!), ctx.clusterName, repo),
    timeoutSeconds: config.archive.timeout,
    processMax: config.archive.processMax,
    ...(codec ? { codec } : {}),
  };
}

/**
 * Answers from the spool when the background pusher has already stored the file (or failed to),
 * otherwise makes sure a pusher runs and waits for its verdict. Resolves only on a stored marker
 * for this very file.
 */
export async function pushAsync(target: AsyncTarget, walPath: string, flags: GlobalFlags, logger: Logger): Promise<ArchivePushResult> {
  const walName = walNameOf(walPath);
  if (flags.spool !== undefined && path.resolve(flags.spool) !== target.spoolDir) {
    // The sh fast path trusts markers in the directory it is given: a wrong one must fail loudly here.
    throw new StrataError('InvalidArgument', `--spool ${flags.spool} is not the spool of this cluster and repository`, {
      hint: `use --spool ${target.spoolDir}`,
    });
  }
  try {
    await fileIdentity(walPath);
  } catch (err) {
    throw unreadableWal(walPath, err);
  }
  const spool = new ArchiveSpool(target.spoolDir);
  const deadline = Date.now() + target.timeoutSeconds * 1000;
  let checked = 0;
  let started: ChildProcess | undefined;
  for (;;) {
    const state = await spool.take(walPath);
    if (state?.kind === 'stored') {
      logger.info({ wal: walName, stored: state.result.storedBytes, again: state.result.alreadyArchived, async: true }, 'archived');
      return state.result;
    }
    if (state?.kind === 'error') throw state.error;
    const now = Date.now();
    if (now - checked >= RESPAWN_CHECK_MS) {
      checked = now;
      // A pusher this call started may still be loading, before it takes the lock.
      const starting = started !== undefined && started.exitCode === null && started.signalCode === null;
      if (!starting && spool.holder() === undefined) {
        await spool.create();
        started = await startPusher(spool, target, flags, path.dirname(path.resolve(walPath)), logger);
        // Held on the child's behalf at once, so the next archive-push does not start another one.
        if (started.pid !== undefined) await spool.lock(started.pid);
      }
    }
    if (now > deadline) {
      throw new StrataError('Timeout', `${walName} was not stored by the background pusher within ${target.timeoutSeconds} s`, {
        hint: `see ${path.join(spool.dir, 'pusher.log')}; PostgreSQL will call archive-push again`,
        context: { walName },
      });
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * The pusher's command line (after bin/run.js). --cluster and --repo as this call got them: the
 * pusher then finds this call's target-cache entry (archive/targetCache.ts) and starts its
 * workers without parsing the config.
 */
export function pusherArgv(target: AsyncTarget, flags: GlobalFlags, walDir: string): string[] {
  const args = [PUSHER_COMMAND, walDir, '--config', target.configPath];
  if (flags.cluster !== undefined) args.push('--cluster', flags.cluster);
  if (target.repo !== undefined) args.push('--repo', target.repo);
  if (flags['log-level'] !== undefined) args.push('--log-level', flags['log-level']);
  return args;
}

async function startPusher(
  spool: ArchiveSpool,
  target: AsyncTarget,
  flags: GlobalFlags,
  walDir: string,
  logger: Logger,
): Promise<ChildProcess> {
  // Loaded only here: most calls find their answer in the spool and never start anything.
  const { spawn } = await import('node:child_process');
  const args = [...process.execArgv, BIN, ...pusherArgv(target, flags, walDir)];
  const logFile = path.join(spool.dir, 'pusher.log');
  try {
    if (lightFs.statSync(logFile).size > LOG_ROTATE_BYTES) lightFs.renameSync(logFile, `${logFile}.1`);
  } catch {
    // No log yet.
  }
  const log = lightFs.openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'ignore', log], cwd: walDir });
    child.on('error', (err) => logger.error({ err: err.message }, 'cannot start the background pusher'));
    child.unref();
    logger.debug({ pid: child.pid, walDir }, 'started the background pusher');
    return child;
  } finally {
    lightFs.closeSync(log);
  }
}
