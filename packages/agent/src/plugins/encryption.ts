import {
  StrataError,
  parsePluginConfig,
  resolveStateDir,
  type EncryptionContext,
  type Encryptor,
  type Logger,
  type RepoConfig,
  type StorageBackend,
  type StrataConfig,
} from '@strata/core/base';
import { importPlugin } from './loadPlugins.js';

export interface RepoEncryption {
  encryptor: Encryptor;
  context: EncryptionContext;
}

/** The encryption settings that apply to a repository: its own, else the top-level default; `false` turns it off. */
function settingsFor(
  repoConfig: RepoConfig,
  config: StrataConfig,
): { settings: Record<string, unknown> & { plugin: string }; where: (string | number)[] } | undefined {
  const index = config.repos.indexOf(repoConfig);
  if (repoConfig.encryption === false) return undefined;
  if (repoConfig.encryption) return { settings: repoConfig.encryption, where: ['repos', index, 'encryption'] };
  if (config.encryption) return { settings: config.encryption, where: ['encryption'] };
  return undefined;
}

/** Loads the repository's encryption plugin; undefined when the repository is not encrypted. */
export async function loadEncryption(
  repoConfig: RepoConfig,
  config: StrataConfig,
  source: string,
  configDir: string,
  logger: Logger,
): Promise<RepoEncryption | undefined> {
  const found = settingsFor(repoConfig, config);
  if (!found) return undefined;
  const plugin = await importPlugin(found.settings.plugin, 'encryption', configDir);
  if (plugin.kind !== 'encryption') throw new StrataError('ConfigInvalid', `plugin "${found.settings.plugin}" is not an encryption plugin`);
  const { plugin: _name, ...options } = found.settings;
  const parsed = parsePluginConfig(plugin.configSchema, options, found.where, source);
  const encryptor = await plugin.create(parsed, { configDir });
  const stateDir = await resolveStateDir(config.stateDir);
  return { encryptor, context: { repoName: repoConfig.name, stateDir, logger } };
}

/** The backend core stores through: decorated by the repository's encryption plugin, if any. */
export async function applyEncryption(
  backend: StorageBackend,
  repoConfig: RepoConfig,
  config: StrataConfig,
  source: string,
  configDir: string,
  logger: Logger,
): Promise<StorageBackend> {
  const enc = await loadEncryption(repoConfig, config, source, configDir, logger);
  return enc ? enc.encryptor.wrap(backend, enc.context) : backend;
}

/**
 * Restore needs to decrypt everything: on a host that cannot (public keys only) it fails before
 * anything is written, naming the keys that would.
 */
export async function assertCanDecrypt(
  config: StrataConfig,
  source: string,
  configDir: string,
  repoName: string | undefined,
  logger: Logger,
): Promise<void> {
  // Without --repo a restore may read from any copy (fallback): every one must be readable here.
  const repoConfigs = repoName === undefined ? config.repos : config.repos.filter((r) => r.name === repoName);
  for (const repoConfig of repoConfigs) {
    const enc = await loadEncryption(repoConfig, config, source, configDir, logger);
    await enc?.encryptor.assertCanDecrypt?.();
  }
}

/** The repository's storage backend without encryption: what key rotation reads and writes keyring objects in. */
async function openRawBackend(repoConfig: RepoConfig, config: StrataConfig, source: string, configDir: string): Promise<StorageBackend> {
  const index = config.repos.indexOf(repoConfig);
  const plugin = await importPlugin(repoConfig.plugin, 'storage', configDir);
  const { plugin: _p, name: _n, media: _m, site: _s, encryption: _e, ...options } = repoConfig;
  return (await plugin.create(parsePluginConfig(plugin.configSchema, options, ['repos', index], source), { configDir })) as StorageBackend;
}

export interface RotateReport {
  repo: string;
  clusters: string[];
  dataKeys: number;
  rewrapped: number;
  unchanged: number;
}

/** Re-wraps the data keys of every encrypted repository (or the named one) for its configured recipients. */
export async function rotateKeys(
  config: StrataConfig,
  source: string,
  configDir: string,
  repoName: string | undefined,
  clusters: string[],
  logger: Logger,
): Promise<RotateReport[]> {
  const repos = repoName === undefined ? config.repos : config.repos.filter((r) => r.name === repoName);
  if (repos.length === 0) {
    throw new StrataError(
      'InvalidArgument',
      `no repository "${repoName}" in the config; configured: ${config.repos.map((r) => r.name).join(', ')}`,
    );
  }
  const out: RotateReport[] = [];
  for (const repoConfig of repos) {
    const enc = await loadEncryption(repoConfig, config, source, configDir, logger);
    if (!enc) continue;
    if (!enc.encryptor.rotate) {
      throw new StrataError('ConfigInvalid', `the encryption plugin of repository "${repoConfig.name}" cannot rotate keys`);
    }
    const backend = await openRawBackend(repoConfig, config, source, configDir);
    try {
      out.push({ repo: repoConfig.name, clusters, ...(await enc.encryptor.rotate(backend, enc.context, clusters)) });
    } finally {
      await backend.close?.();
    }
  }
  if (out.length === 0) {
    throw new StrataError('ConfigInvalid', 'no repository is encrypted: nothing to rotate', {
      hint: 'set encryption (top level or per repository) in the config',
    });
  }
  return out;
}
