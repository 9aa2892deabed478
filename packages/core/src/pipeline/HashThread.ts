import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { StrataError } from '../errors/index.js';
import { builtWorkerUrl } from './workerUrl.js';

export type HashRequest =
  | { op: 'update'; seq: number; id: number; sab: SharedArrayBuffer; offset: number; length: number }
  | { op: 'digest' | 'drop'; seq: number; id: number };

export interface HashReply {
  seq: number;
  hex?: string;
  error?: string;
}

/** A sha256 fed in order; `update` may read its buffer until the promise it returns settles. */
export interface StreamHash {
  update(data: Buffer): Promise<void> | void;
  digest(): Promise<string>;
  /** Forget the hash (the file failed). */
  drop(): void;
}

/** The sha256 on this thread. */
export function localHash(): StreamHash {
  const sha = createHash('sha256');
  return {
    update: (data) => void sha.update(data),
    digest: () => Promise.resolve(sha.digest('hex')),
    drop: () => undefined,
  };
}

/**
 * One thread computing the sha256 of large restored files, off the main thread: a restore's main
 * thread verified, hashed and dispatched every byte (sha256 ~1 s of its ~3.6 s busy time for a
 * 1.5 GiB chain at pgbench scale 100), while the block workers sat mostly idle. Buffers handed to
 * `update` must live in a SharedArrayBuffer (the staging windows do): nothing is copied.
 * Messages to one thread are handled in order, so each file's regions are hashed in file order.
 */
export class HashThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (r: HashReply) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private nextId = 0;
  private failure: StrataError | undefined;

  constructor() {
    this.worker = new Worker(builtWorkerUrl('hashWorker'));
    this.worker.on('message', (reply: HashReply) => {
      const w = this.waiting.get(reply.seq);
      this.waiting.delete(reply.seq);
      if (!w) return;
      if (reply.error !== undefined) w.reject(new StrataError('Internal', `hash thread: ${reply.error}`));
      else w.resolve(reply);
    });
    const fail = (cause: unknown) => {
      this.failure ??= new StrataError('Internal', `the hash thread failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
      for (const w of this.waiting.values()) w.reject(this.failure);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.worker.unref();
  }

  /** A new file's hash. */
  open(): StreamHash {
    const id = this.nextId++;
    return {
      update: async (data) => {
        if (!(data.buffer instanceof SharedArrayBuffer)) throw new StrataError('Internal', 'the hash thread reads shared buffers only');
        await this.send({ op: 'update', seq: 0, id, sab: data.buffer, offset: data.byteOffset, length: data.length });
      },
      digest: async () => (await this.send({ op: 'digest', seq: 0, id })).hex!,
      drop: () => void this.send({ op: 'drop', seq: 0, id }).catch(() => undefined),
    };
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }

  private send(req: HashRequest): Promise<HashReply> {
    if (this.failure) return Promise.reject(this.failure);
    req.seq = this.seq++;
    return new Promise<HashReply>((resolve, reject) => {
      this.waiting.set(req.seq, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(req);
    }).finally(() => {
      if (this.waiting.size === 0) this.worker.unref();
    });
  }
}
