import { isStrataError } from '@strata/core/errors';

/**
 * What every command prints, whether it runs through oclif (BaseCommand) or through the archive
 * fast path (archive/fastPath.ts): `--json` shapes, the error-to-exit-code map (docs/exit-codes.md)
 * and the human error text on stderr.
 */
export function exitCodeFor(err: unknown): number {
  if (isStrataError(err)) return err.exitCode;
  const oclifExit = (err as { oclif?: { exit?: number } }).oclif?.exit;
  return typeof oclifExit === 'number' ? oclifExit : 1;
}

/** `--json` on success: a command that found problems (verify) sets the exit code and still returns its report. */
export function successJson(result: unknown, warnings: string[]): unknown {
  return { status: process.exitCode ?? 0, result, warnings };
}

export function errorJson(err: unknown, warnings: string[]): unknown {
  const e = err as Error & { code?: string; hint?: string; context?: unknown };
  return {
    status: exitCodeFor(err),
    name: isStrataError(err) ? err.code : e.name,
    message: e.message,
    ...(isStrataError(err) ? { hint: err.hint, context: err.context } : {}),
    warnings,
  };
}

/** As oclif prints JSON: indented by two spaces, one trailing newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A StrataError as the user sees it on stderr; the chain of causes with their stacks only at --log-level debug. */
export function describeError(err: { describe(): string; cause?: unknown }, logLevel: string | undefined): string {
  let text = `Error: ${err.describe()}\n`;
  if (logLevel !== 'debug') return text;
  for (let cause = err.cause, depth = 0; cause instanceof Error && depth < 8; cause = cause.cause, depth++) {
    text += `Cause: ${cause.stack ?? cause.message}\n`;
  }
  return text;
}
