import { fileURLToPath } from 'node:url';

/** The strata executable as PostgreSQL should call it: absolute node and bin paths, shell-quoted. */
export function strataCommandPrefix(): string {
  const bin = fileURLToPath(new URL('../bin/run.js', import.meta.url));
  return `${shellQuote(process.execPath)} ${shellQuote(bin)}`;
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Flags that make a PostgreSQL-invoked strata use the same config and cluster. */
export function contextFlags(configFile: string, cluster: string): string {
  return `--config ${shellQuote(configFile)} --cluster ${shellQuote(cluster)}`;
}
