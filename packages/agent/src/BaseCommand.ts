import { Command, Flags, type Interfaces } from '@oclif/core';
import { pino } from 'pino';
import { isStrataError, type Logger, type Repository } from '@strata/core';
import { configPath, loadConfig, selectCluster, type LoadedConfig } from './config/loadConfig.js';
import { openRepository } from './plugins/loadPlugins.js';
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
    repo: Flags.string({ description: 'repository name from the config (default: the first)', helpGroup: 'GLOBAL' }),
    'log-level': Flags.option({ options: ['error', 'warn', 'info', 'debug'] as const, default: 'warn', helpGroup: 'GLOBAL' })(),
  };

  protected flags!: BaseFlags<T>;
  protected args!: Record<string, string | undefined>;
  protected warnings: string[] = [];
  private cleanups: (() => Promise<void>)[] = [];
  private _logger: Logger | undefined;

  protected get logger(): Logger {
    this._logger ??= pino({ level: this.flags?.['log-level'] ?? 'warn', base: { cmd: this.id } }, pino.destination(2));
    return this._logger;
  }

  protected async loadConfig(): Promise<LoadedConfig> {
    return loadConfig(configPath(this.flags.config));
  }

  protected async context(): Promise<{
    loaded: LoadedConfig;
    clusterName: string;
    cluster: LoadedConfig['config']['clusters'][string];
    repo: Repository;
  }> {
    const loaded = await this.loadConfig();
    const { name, cluster } = selectCluster(loaded.config, this.flags.cluster);
    const repo = await openRepository(loaded.config, loaded.path, loaded.dir, this.flags.repo, this.logger);
    return { loaded, clusterName: name, cluster, repo };
  }

  /** A progress line on stderr: drawn only on a TTY, without --json and without an explicit --log-level. */
  protected progress(verb: string): ProgressLine {
    const logLevelGiven = this.argv.some((a) => a === '--log-level' || a.startsWith('--log-level='));
    return new ProgressLine(verb, process.stderr, ProgressLine.wanted(process.stderr, { json: this.jsonEnabled(), logLevelGiven }));
  }

  protected onCleanup(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
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
    // A command that found problems (verify) sets the exit code and still returns its report.
    return { status: process.exitCode ?? 0, result, warnings: this.warnings };
  }

  protected override toErrorJson(err: unknown): unknown {
    const e = err as Error & { code?: string; hint?: string; context?: unknown };
    return {
      status: exitCodeFor(err),
      name: isStrataError(err) ? err.code : e.name,
      message: e.message,
      ...(isStrataError(err) ? { hint: err.hint, context: err.context } : {}),
      warnings: this.warnings,
    };
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    process.exitCode = exitCodeFor(err);
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(err));
      return undefined;
    }
    // oclif's own errors (bad flags, --help) keep oclif's rendering.
    if (!isStrataError(err)) throw err;
    process.stderr.write(`Error: ${err.describe()}\n`);
    if (this.flags?.['log-level'] === 'debug' && err.cause instanceof Error)
      process.stderr.write(`Cause: ${err.cause.stack ?? err.cause.message}\n`);
    return undefined;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const fn of this.cleanups.reverse()) await fn().catch(() => undefined);
    return super.finally(err);
  }
}

export function exitCodeFor(err: unknown): number {
  if (isStrataError(err)) return err.exitCode;
  const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
  return typeof oclifExit === 'number' ? oclifExit : 1;
}
