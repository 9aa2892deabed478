import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CONTRACT_VERSION,
  Repository,
  StrataError,
  nonePlugin,
  parsePluginConfig,
  zstdPlugin,
  type AnyPlugin,
  type Compressor,
  type CopyIdentity,
  type Logger,
  type PluginKind,
  type StorageBackend,
  type StrataConfig,
} from '@strata/core/base';
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

function withoutPluginKey(obj: Record<string, unknown>, extra: string[] = []): Record<string, unknown> {
  const copy = { ...obj };
  for (const k of ['plugin', ...extra]) delete copy[k];
  return copy;
}

/** Opens the named repository (default: the first configured). */
export async function openRepository(
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
  const plugin = await importPlugin(repoConfig.plugin, 'storage', configDir);
  const options = parsePluginConfig(
    plugin.configSchema,
    withoutPluginKey(repoConfig, ['name', 'media', 'site', 'encryption']),
    ['repos', index],
    source,
  );
  const backend = await plugin.create(options, { configDir });
  const stored = await applyEncryption(backend as StorageBackend, repoConfig, config, source, configDir, logger);
  const compressors = await loadCompressors(config, source, configDir);
  const copy = COPY_DEFAULTS[repoConfig.plugin] ?? {};
  return new Repository(repoConfig.name, stored, compressors, logger, undefined, {
    media: repoConfig.media ?? copy.media,
    site: repoConfig.site ?? copy.site,
  });
}
