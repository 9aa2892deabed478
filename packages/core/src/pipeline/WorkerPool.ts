import { Worker } from 'node:worker_threads';
import { StrataError } from '../errors/index.js';

interface Pending<Req, Res> {
  id: number;
  request: Req;
  resolve: (value: Res) => void;
  reject: (err: unknown) => void;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { message: string; code?: string };
}

export interface WorkerPoolOptions {
  /** Number of worker threads. */
  size: number;
  /** The worker's module (it answers `{id, ...request}` messages with `{id, ok, value | error}`). */
  workerUrl: URL;
  workerData?: unknown;
  /** Most jobs accepted at once (running and queued); further run() calls wait. Default 2 × size. */
  maxInFlight?: number;
}

/**
 * A fixed pool of worker threads for CPU work (compression, hashing). Jobs run in any worker and
 * may finish in any order; each run() resolves with its own result, so callers that await in
 * submission order keep their order. At most `maxInFlight` jobs are held: a caller beyond that
 * waits for room (backpressure), so nothing queues without bound. A worker that dies fails its
 * job and every later one with an error instead of leaving them pending.
 */
export class WorkerPool<Req extends object, Res> {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, Pending<Req, Res>>();
  private readonly queue: Pending<Req, Res>[] = [];
  private readonly waiting: (() => void)[] = [];
  private readonly maxInFlight: number;
  private inFlight = 0;
  private nextId = 1;
  private failure: StrataError | undefined;
  private closed = false;

  constructor(opts: WorkerPoolOptions) {
    if (opts.size < 1) throw new StrataError('InvalidArgument', `a worker pool needs at least one worker (got ${opts.size})`);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? opts.size * 2);
    for (let i = 0; i < opts.size; i++) {
      const worker = new Worker(opts.workerUrl, { workerData: opts.workerData });
      worker.on('message', (reply: Reply) => this.onReply(worker, reply));
      worker.on('error', (err) => this.fail(worker, err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(worker, new Error(`worker thread exited with code ${code}`));
      });
      worker.unref();
      this.workers.push(worker);
      this.idle.push(worker);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  /** Jobs accepted and not yet settled (tests check the bound). */
  get pending(): number {
    return this.inFlight;
  }

  async run(request: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    while (this.inFlight >= this.maxInFlight && !this.failure) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failure) throw this.failure;
    if (this.closed) throw new StrataError('Internal', 'the worker pool is closed');
    this.inFlight++;
    try {
      return await new Promise<Res>((resolve, reject) => {
        const job: Pending<Req, Res> = { id: this.nextId++, request, resolve, reject };
        const worker = this.idle.pop();
        if (worker) this.dispatch(worker, job, transfer);
        else this.queue.push(job);
      });
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new StrataError('Aborted', 'the worker pool was closed with jobs pending');
    for (const job of this.queue.splice(0)) job.reject(err);
    for (const wake of this.waiting.splice(0)) wake();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(worker: Worker, job: Pending<Req, Res>, transfer: ArrayBuffer[] = []): void {
    this.running.set(worker, job);
    worker.ref();
    worker.postMessage({ ...job.request, id: job.id }, transfer);
  }

  private onReply(worker: Worker, reply: Reply): void {
    const job = this.running.get(worker);
    if (!job || job.id !== reply.id) return;
    this.running.delete(worker);
    if (reply.ok) job.resolve(reply.value as Res);
    else {
      const code = reply.error?.code;
      job.reject(
        code === 'Integrity'
          ? new StrataError('Integrity', reply.error?.message ?? 'integrity error in a worker')
          : new StrataError('Internal', `worker job failed: ${reply.error?.message ?? 'unknown error'}`),
      );
    }
    const next = this.queue.shift();
    if (next) this.dispatch(worker, next);
    else {
      worker.unref();
      this.idle.push(worker);
    }
  }

  private fail(worker: Worker, cause: unknown): void {
    if (this.closed) return;
    this.failure ??= new StrataError('Internal', `a worker thread failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      hint: 'run again; if it repeats, lower backup.processMax or report the error',
    });
    const job = this.running.get(worker);
    this.running.delete(worker);
    job?.reject(this.failure);
    for (const queued of this.queue.splice(0)) queued.reject(this.failure);
    for (const wake of this.waiting.splice(0)) wake();
  }
}
