/**
 * The hash thread (HashThread.ts): sha256 of files being restored, fed regions of shared staging
 * buffers in file order, so the main thread only writes them.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HashReply, HashRequest } from './HashThread.js';

const hashes = new Map<number, Hash>();

function handle(req: HashRequest): HashReply {
  switch (req.op) {
    case 'update': {
      let hash = hashes.get(req.id);
      if (!hash) hashes.set(req.id, (hash = createHash('sha256')));
      hash.update(new Uint8Array(req.sab, req.offset, req.length));
      return { seq: req.seq };
    }
    case 'digest': {
      const hex = (hashes.get(req.id) ?? createHash('sha256')).digest('hex');
      hashes.delete(req.id);
      return { seq: req.seq, hex };
    }
    case 'drop':
      hashes.delete(req.id);
      return { seq: req.seq };
  }
}

parentPort!.on('message', (req: HashRequest) => {
  try {
    parentPort!.postMessage(handle(req));
  } catch (err) {
    parentPort!.postMessage({ seq: req.seq, error: (err as Error).message } satisfies HashReply);
  }
});
