import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { StrataError } from '@strata/core/base';

/**
 * Where a passphrase comes from: a file, an environment variable or a command's output — never
 * the config text itself or a command-line flag, which end up in shell histories, `ps` and logs.
 */
export const secretSourceSchema = z.union(
  [
    z.object({ file: z.string().min(1) }).strict(),
    z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }).strict(),
    z.object({ command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) }).strict(),
  ],
  { error: 'give a secret as {file: PATH}, {env: VARIABLE} or {command: CMD}, never inline' },
);

export type SecretSource = z.output<typeof secretSourceSchema>;

/** Describes a source for messages (never its value). */
export function describeSource(s: SecretSource): string {
  if ('file' in s) return `file ${s.file}`;
  if ('env' in s) return `environment variable ${s.env}`;
  return `command ${Array.isArray(s.command) ? s.command[0] : s.command.split(/\s+/)[0]}`;
}

/** Reads a secret; one trailing newline is dropped (files and commands usually end with one). */
export async function readSecret(s: SecretSource, what: string, configDir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fail = (why: string, hint: string, cause?: unknown) =>
    new StrataError('ConfigInvalid', `cannot read the ${what} from ${describeSource(s)}: ${why}`, { hint, cause: sanitized(cause) });
  let value: string;
  if ('file' in s) {
    try {
      value = await readFile(path.resolve(configDir, s.file), 'utf8');
    } catch (err) {
      throw fail((err as NodeJS.ErrnoException).code ?? 'unreadable', 'make the file readable by the user strata runs as (mode 0600)');
    }
  } else if ('env' in s) {
    const v = env[s.env];
    if (v === undefined) throw fail('not set', `export ${s.env} in the environment strata runs in`);
    value = v;
  } else {
    const [file, args] = Array.isArray(s.command) ? [s.command[0]!, s.command.slice(1)] : ['/bin/sh', ['-c', s.command]];
    value = await new Promise<string>((resolve, reject) => {
      execFile(file, args, { cwd: configDir, timeout: 30_000, maxBuffer: 64 * 1024, encoding: 'utf8' }, (err, stdout) => {
        // Neither stdout nor stderr goes into the error: either may hold the secret.
        if (err) reject(fail(`it failed (exit ${err.code ?? err.signal ?? 'unknown'})`, 'run the command by hand as the strata user'));
        else resolve(stdout);
      });
    });
  }
  value = value.replace(/\r?\n$/, '');
  if (!value) throw fail('it is empty', 'put the secret there');
  return value;
}

/** An error's code only: messages of failed reads or commands must not carry secrets along. */
function sanitized(cause: unknown): unknown {
  return cause === undefined ? undefined : { code: (cause as { code?: unknown }).code };
}
