import * as path from 'node:path';

export const DEFAULT_CONFIG_PATH = '/etc/strata/strata.yaml';

/** Lookup order: --config, then STRATA_CONFIG, then /etc/strata/strata.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.STRATA_CONFIG ?? DEFAULT_CONFIG_PATH);
}
