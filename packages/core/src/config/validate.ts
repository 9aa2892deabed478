import type { z } from 'zod';
import { StrataError } from '../errors/index.js';
import { configSchema, type StrataConfig } from './schema.js';

/** Formats zod issues as "path.to.key: message" lines. */
export function formatIssues(error: z.ZodError, prefix: (string | number)[] = []): string {
  return error.issues
    .map((i) => {
      const p = [...prefix, ...i.path.map((x) => (typeof x === 'symbol' ? String(x) : x))];
      const where = p.length ? p.map((x, n) => (typeof x === 'number' ? `[${x}]` : n ? `.${x}` : x)).join('') : '(top level)';
      return `  ${where}: ${i.message}`;
    })
    .join('\n');
}

/** Validates parsed config data; `source` names the file in the message. */
export function validateConfig(data: unknown, source: string): StrataConfig {
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new StrataError('ConfigInvalid', `invalid configuration in ${source}:\n${formatIssues(parsed.error)}`, {
      context: { source },
      hint: 'fix the keys listed above; docs/configuration.md lists every key with its default',
    });
  }
  return parsed.data;
}

export function parsePluginConfig<S extends z.ZodType>(schema: S, data: unknown, where: (string | number)[], source: string): z.output<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new StrataError('ConfigInvalid', `invalid configuration in ${source}:\n${formatIssues(parsed.error, where)}`, {
      context: { source },
      hint: 'see the plugin README for its options',
    });
  }
  return parsed.data;
}
