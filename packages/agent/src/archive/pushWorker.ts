import { parentPort } from 'node:worker_threads';
import { toStrataError } from '@strata/core/errors';
import { prepareWal, WalScratch, type PreparedWal, type WalCodec } from '@strata/core/wal/prepare';

export interface WorkerRequest {
  id: number;
  walPath: string;
  /** Undefined when the repository's compressor is not one core runs: the body is then the file. */
  codec?: WalCodec;
}

export type WorkerReply =
  | { id: number; prepared: PreparedWal }
  | { id: number; error: { code: string; message: string; hint?: string; context: Record<string, string | number | boolean | undefined> } };

/**
 * One of the background pusher's workers (archive/pusher.ts): the CPU half of archive-push (read,
 * sha256, compress), one file at a time. It loads no config, schema or storage plugin — the
 * pusher's main thread opens the repository once and stores what the workers prepare — so it
 * starts in milliseconds and every core goes to checksums and compression.
 */
const scratch = new WalScratch();

parentPort!.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const prepared = prepareWal(req.walPath, req.codec, scratch);
    // The body has its own ArrayBuffer (prepareWal): handed over, not copied.
    transfer.push(prepared.body.buffer as ArrayBuffer);
    reply = { id: req.id, prepared };
  } catch (err) {
    const e = toStrataError(err);
    reply = { id: req.id, error: { code: e.code, message: e.message, hint: e.hint, context: e.context } };
  }
  parentPort!.postMessage(reply, transfer);
});
