import { isStrataError } from '@strata/core/errors';

/**
 * PostgreSQL treats an exit code above 125 from restore_command as fatal and stops recovery;
 * any lower code means "no such file" and ends recovery there. So only a file that is truly
 * absent exits 1: a damaged object or an unreachable repository must stop recovery, never
 * let PostgreSQL promote a cluster that is missing WAL.
 */
export const EXIT_NOT_ARCHIVED = 1;
export const EXIT_STOP_RECOVERY = 126;

/** The one failure that exits 1 quietly: the requested file is simply not archived. */
export function isNotArchived(err: unknown, walName: string | undefined): boolean {
  return isStrataError(err) && err.code === 'NotFound' && err.context.walName === walName;
}
