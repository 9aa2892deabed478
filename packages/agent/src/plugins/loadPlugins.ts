import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CONTRACT_VERSION,
  MissQueue,
  ReplicatedRepository,
  Repository,
  requiredCopies,
  resolveStateDir,
  StrataError,
  nonePlugin,
  parsePluginConfig,
  zstdPlugin,
  type AnyPlugin,
  type Compressor,
  type CopyIdentity,
  type Logger,
  type PluginKind,
  type Repo,
  type RepoConfig,
  type StorageBackend,
  type StrataConfig,
} from '@strata/core/base';
import { codecOf, type WalCodec } from '@strata/core/wal/prepare';
import { applyEncryption } from './encryption.js';

/** Short names of the plugins that ship with Strata. */
const BUILTIN_PACKAGES: Record<string, string> = {
  fs: '@strata/plugin-fs',
  s3: '@strata/plugin-s3',
  azure: '@strata/plugin-azure',
  gcs: '@strata/plugin-gcs',
  'encrypt-pgp': '@strata/plugin-encrypt-pgp',
};
const BUILTIN_COMPRESSION: Record<string, AnyPlugin> = { zstd: zstdPlugin, none: nonePlugin };
/** Media and site of a copy when the config does not say (third-party plugins: unknown until configured). */
const COPY_DEFAULTS: Record<string, CopyIdentity> = {
  fs: { media: 'disk', site: 'onsite' },
  s3: { media: 'object', site: 'offsite' },
  gcs: { media: 'object', site: 'offsite' },
  azure: { media: 'object', site: 'offsite' },
};

/**
 * Where `strata plugins install` (oclif's plugin manager) puts packages: the same rule oclif
 * uses for its data directory, so the fast archive-push path that never loads oclif agrees.
 */
export function pluginDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STRATA_DATA_DIR) return env.STRATA_DATA_DIR;
  return path.join(env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'strata');
}

/** A package installed with `strata plugins install`, as a file URL; undefined when not installed there. */
function resolveInstalled(specifier: string): string | undefined {
  if (specifier.startsWith('file:')) return undefined;
  try {
    return pathToFileURL(createRequire(path.join(pluginDataDir(), 'package.json')).resolve(specifier)).href;
  } catch {
    return undefined;
  }
}

/** A name, a package ("strata-plugin-x", "@acme/strata-x") or a path ("./x.js"). */
export async function importPlugin(spec: string, kind: PluginKind, configDir: string): Promise<AnyPlugin> {
  if (kind === 'compression' && BUILTIN_COMPRESSION[spec]) return BUILTIN_COMPRESSION[spec];
  const target = BUILTIN_PACKAGES[spec] ?? spec;
  const specifier = target.startsWith('.') || path.isAbsolute(target) ? pathToFileURL(path.resolve(configDir, target)).href : target;
  let mod: { default?: unknown };
  try {
    mod = (await import(resolveInstalled(specifier) ?? specifier)) as { default?: unknown };
  } catch (err) {
    throw new StrataError('ConfigInvalid', `cannot load ${kind} plugin "${spec}": ${(err as Error).message}`, {
      cause: err,
      hint: `install it (npm i -g ${target}, or "strata plugins install ${target}") or fix the plugin name in the config`,
    });
  }
  const plugin = mod.default as Partial<AnyPlugin> | undefined;
  if (!plugin || typeof plugin !== 'object' || typeof plugin.create !== 'function' || !plugin.configSchema) {
    throw new StrataError('ConfigInvalid', `"${spec}" is not a Strata plugin (its default export must come from definePlugin)`);
  }
  if (plugin.contractVersion !== CONTRACT_VERSION) {
    throw new StrataError(
      'ConfigInvalid',
      `plugin "${spec}" was built for plugin contract ${plugin.contractVersion ?? 'unknown'}, this Strata speaks contract ${CONTRACT_VERSION}`,
      {
        hint: 'install a version of the plugin made for this Strata release',
      },
    );
  }
  if (plugin.kind !== kind) throw new StrataError('ConfigInvalid', `plugin "${spec}" is a ${plugin.kind} plugin, configured as ${kind}`);
  return plugin as AnyPlugin;
}

async function loadCompressors(config: StrataConfig, source: string, configDir: string): Promise<Map<string, Compressor>> {
  const out = new Map<string, Compressor>();
  for (const [name, plugin] of Object.entries(BUILTIN_COMPRESSION)) {
    const options = name === config.compression.plugin ? withoutPluginKey(config.compression) : {};
    const parsed = parsePluginConfig(plugin.configSchema, options, ['compression'], source);
    out.set(name, (await plugin.create(parsed, { configDir })) as Compressor);
  }
  const chosen = config.compression.plugin;
  if (!out.has(chosen)) {
    const plugin = await importPlugin(chosen, 'compression', configDir);
    const parsed = parsePluginConfig(plugin.configSchema, withoutPluginKey(config.compression), ['compression'], source);
    out.set(chosen, (await plugin.create(parsed, { configDir })) as Compressor);
  }
  return out;
}

/** The configured compressor's codec when core runs it itself (see codecOf); undefined for a third-party one. */
export async function compressionCodec(config: StrataConfig, source: string, configDir: string): Promise<WalCodec | undefined> {
  return codecOf((await loadCompressors(config, source, configDir)).get(config.compression.plugin)!);
}

function withoutPluginKey(obj: Record<string, unknown>, extra: string[] = []): Record<string, unknown> {
  const copy = { ...obj };
  for (const k of ['plugin', ...extra]) delete copy[k];
  return copy;
}

/**
 * Opens the named repository, or without a name every configured repository as one (writes fan
 * out, reads fall back: ReplicatedRepository; a single configured repository is opened as is).
 */
export async function openRepository(
  config: StrataConfig,
  source: string,
  configDir: string,
  name: string | undefined,
  logger: Logger,
): Promise<Repo> {
  if (name !== undefined || config.repos.length === 1) return openCopy(config, source, configDir, name, logger);
  const copies = await openCopies(config, source, configDir, logger);
  return new ReplicatedRepository(copies, { minCopies: requiredCopies(config), queue: await missQueue(config), logger });
}

/** Where writes record what a repository copy missed: `<stateDir>/replication/`. */
export async function missQueue(config: StrataConfig): Promise<MissQueue> {
  return new MissQueue(path.join(await resolveStateDir(config.stateDir), 'replication'));
}

/** Every configured repository, each on its own, in config order. */
export async function openCopies(config: StrataConfig, source: string, configDir: string, logger: Logger): Promise<Repository[]> {
  const compressors = await loadCompressors(config, source, configDir);
  return Promise.all(config.repos.map((r) => openOne(config, r, source, configDir, logger, compressors)));
}

/** One repository by name (default: the first configured). */
export async function openCopy(
  config: StrataConfig,
  source: string,
  configDir: string,
  name: string | undefined,
  logger: Logger,
): Promise<Repository> {
  const index = name === undefined ? 0 : config.repos.findIndex((r) => r.name === name);
  const repoConfig = config.repos[index];
  if (!repoConfig) {
    throw new StrataError(
      'InvalidArgument',
      `no repository "${name}" in the config; configured: ${config.repos.map((r) => r.name).join(', ')}`,
    );
  }
  return openOne(config, repoConfig, source, configDir, logger, await loadCompressors(config, source, configDir));
}

async function openOne(
  config: StrataConfig,
  repoConfig: RepoConfig,
  source: string,
  configDir: string,
  logger: Logger,
  compressors: Map<string, Compressor>,
): Promise<Repository> {
  const index = config.repos.indexOf(repoConfig);
  const plugin = await importPlugin(repoConfig.plugin, 'storage', configDir);
  const options = parsePluginConfig(
    plugin.configSchema,
    withoutPluginKey(repoConfig, ['name', 'media', 'site', 'encryption']),
    ['repos', index],
    source,
  );
  const backend = await plugin.create(options, { configDir });
  const stored = await applyEncryption(backend as StorageBackend, repoConfig, config, source, configDir, logger);
  const copy = COPY_DEFAULTS[repoConfig.plugin] ?? {};
  return new Repository(repoConfig.name, stored, compressors, logger, undefined, {
    media: repoConfig.media ?? copy.media,
    site: repoConfig.site ?? copy.site,
  });
}
