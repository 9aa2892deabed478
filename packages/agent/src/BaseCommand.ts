import { Command, Flags, type Interfaces } from '@oclif/core';
import { isStrataError, type Logger } from '@strata/core/base';
import { EXIT_CODES, acquireClusterLock, resolveStateDir, type ClusterLock } from '@strata/core';
import { configPath, loadConfig, type LoadedConfig } from './config/loadConfig.js';
import { openContext, type CommandContext } from './cli/context.js';
import { createLogger, LOG_LEVELS } from './cli/logger.js';
import { describeError, errorJson, exitCodeFor, successJson } from './cli/output.js';
import { ProgressLine } from './progress.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;

/**
 * Every command: --config/--cluster/--repo/--log-level, `--json` printing
 * {status, result, warnings}, human text on stdout, logs on stderr, and one error-to-exit-code map
 * (docs/exit-codes.md).
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    config: Flags.string({ description: 'config file (default: $STRATA_CONFIG, then /etc/strata/strata.yaml)', helpGroup: 'GLOBAL' }),
    cluster: Flags.string({ description: 'cluster name from the config; optional when only one is configured', helpGroup: 'GLOBAL' }),
    repo: Flags.string({
      description: 'only this repository from the config (default: all of them: writes go to every one, reads fall back)',
      helpGroup: 'GLOBAL',
    }),
    'log-level': Flags.option({ options: LOG_LEVELS, default: 'warn', helpGroup: 'GLOBAL' })(),
  };

  protected flags!: BaseFlags<T>;
  protected args!: Record<string, string | undefined>;
  protected warnings: string[] = [];
  private cleanups: (() => Promise<void>)[] = [];
  private _logger: Logger | undefined;

  protected get logger(): Logger {
    this._logger ??= createLogger(this.flags?.['log-level'] ?? 'warn', this.id);
    return this._logger;
  }

  protected async loadConfig(): Promise<LoadedConfig> {
    return loadConfig(configPath(this.flags.config));
  }

  protected async context(): Promise<CommandContext> {
    return openContext(this.flags, this.logger);
  }

  /** A progress line on stderr: drawn only on a TTY, without --json and without an explicit --log-level. */
  protected progress(verb: string): ProgressLine {
    const logLevelGiven = this.argv.some((a) => a === '--log-level' || a.startsWith('--log-level='));
    return new ProgressLine(verb, process.stderr, ProgressLine.wanted(process.stderr, { json: this.jsonEnabled(), logLevelGiven }));
  }

  protected onCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /** Aborted on SIGINT/SIGTERM once the command holds a cluster lock. */
  protected readonly abortController = new AbortController();
  /** Commands that clean up on abort themselves (restore-test) finish their run; others exit at once. */
  protected gracefulAbort = false;

  /**
   * Takes the cluster's lock (docs/decisions.md: one job per cluster) for the rest of the command;
   * a second job on the cluster fails with exit code 9 naming the holder. On SIGINT/SIGTERM the
   * lock is released before the process exits, so the next job does not have to clear it.
   */
  protected async lockCluster(stateDir: string | undefined, clusterName: string, job: string): Promise<ClusterLock> {
    const dir = await resolveStateDir(stateDir);
    const lock = await acquireClusterLock(dir, clusterName, job, this.logger);
    this.onCleanup(() => lock.release());
    const onSignal = (sig: NodeJS.Signals) => {
      this.logger.warn({ signal: sig }, 'interrupted');
      if (this.gracefulAbort && !this.abortController.signal.aborted) {
        this.abortController.abort();
        return;
      }
      lock.releaseSync();
      process.stderr.write(`Error: ${this.id ?? 'strata'} interrupted by ${sig}; nothing it wrote becomes visible\n`);
      process.exit(EXIT_CODES.Aborted);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return lock;
  }

  protected warnUser(message: string): void {
    this.warnings.push(message);
    this.logToStderr(`Warning: ${message}`);
  }

  public override async init(): Promise<void> {
    await super.init();
    const { flags, args } = await this.parse(this.ctor);
    this.flags = flags as BaseFlags<T>;
    this.args = args;
  }

  protected override toSuccessJson(result: unknown): unknown {
    return successJson(result, this.warnings);
  }

  protected override toErrorJson(err: unknown): unknown {
    return errorJson(err, this.warnings);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    process.exitCode = exitCodeFor(err);
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err));
      return undefined;
    }
    // oclif's own errors (bad flags, --help) keep oclif's rendering.
    if (!isStrataError(err)) throw err;
    process.stderr.write(describeError(err, this.flags?.['log-level']));
    return undefined;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const fn of this.cleanups.reverse()) await fn().catch(() => undefined);
    return super.finally(err);
  }
}

export { exitCodeFor };
