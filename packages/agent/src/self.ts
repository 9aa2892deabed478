import { lightFs } from '@strata/core/lightFs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));

/** Node flags from the bin script's shebang (`#!/usr/bin/env -S node FLAGS`), so every way of starting strata runs alike. */
export function nodeFlags(bin = BIN): string[] {
  const first = lightFs.readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node((?:\s+--\S+)*)\s*$/.exec(first);
  return m?.[1] ? m[1].trim().split(/\s+/) : [];
}

/** The strata executable as PostgreSQL should call it: absolute node and bin paths, shell-quoted. */
export function strataCommandPrefix(): string {
  return [process.execPath, ...nodeFlags(), BIN].map(shellQuote).join(' ');
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Flags that make a PostgreSQL-invoked strata use the same config and cluster. */
export function contextFlags(configFile: string, cluster: string): string {
  return `--config ${shellQuote(configFile)} --cluster ${shellQuote(cluster)}`;
}
