import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parse, YAMLParseError } from 'yaml';
import { StrataError, validateConfig, type ClusterConfig, type StrataConfig } from '@strata/core/base';

import { DEFAULT_CONFIG_PATH, configPath } from './configPath.js';

export { DEFAULT_CONFIG_PATH, configPath };

export interface LoadedConfig {
  path: string;
  dir: string;
  config: StrataConfig;
  /** The file's text as read and validated. */
  text: string;
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StrataError('ConfigInvalid', `cannot read config file ${file} (${code ?? (err as Error).message})`, {
      cause: err,
      hint:
        code === 'ENOENT'
          ? 'create it (see docs/configuration.md), or point to one with --config PATH or STRATA_CONFIG'
          : 'make it readable by the user running strata',
    });
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new StrataError('ConfigInvalid', `config file ${file} is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  return { path: file, dir: path.dirname(file), config: validateConfig(data, file), text };
}

/** --cluster may be omitted when exactly one cluster is configured. */
export function selectCluster(config: StrataConfig, name: string | undefined): { name: string; cluster: ClusterConfig } {
  const names = Object.keys(config.clusters);
  if (name === undefined) {
    if (names.length === 1) return { name: names[0]!, cluster: config.clusters[names[0]!]! };
    throw new StrataError('InvalidArgument', `several clusters are configured (${names.join(', ')}): say which with --cluster`);
  }
  const cluster = config.clusters[name];
  if (!cluster) throw new StrataError('InvalidArgument', `no cluster "${name}" in the config; configured: ${names.join(', ')}`);
  return { name, cluster };
}
