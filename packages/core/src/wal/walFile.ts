import * as path from 'node:path';
import { StrataError } from '../errors/index.js';
import { isWalFileName } from '../postgres/walNames.js';

// Shared by archivePush and the async archive-push client, which must load little.

/** The WAL file name of archive-push's %p argument; InvalidArgument for anything else. */
export function walNameOf(walPath: string): string {
  const walName = path.basename(walPath);
  if (!isWalFileName(walName)) {
    throw new StrataError('InvalidArgument', `"${walName}" is not a WAL file name`, {
      hint: "use archive_command = 'strata archive-push %p' so PostgreSQL passes the file's path",
    });
  }
  return walName;
}

export function unreadableWal(walPath: string, err: unknown): StrataError {
  return new StrataError('NotFound', `cannot read WAL file ${walPath}: ${(err as Error).message}`, { cause: err });
}
