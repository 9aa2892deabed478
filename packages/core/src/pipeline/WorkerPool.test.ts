import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors/index.js';
import { WorkerPool } from './WorkerPool.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pool-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * A test worker: replies to {n, delay} with n * 2 after `delay` ms; counts the jobs it received in
 * the shared Int32Array; {crash: 'exit' | 'throw'} kills the thread.
 */
const worker = path.join(dir, 'worker.mjs');
fs.writeFileSync(
  worker,
  `import { parentPort, workerData } from 'node:worker_threads';
const seen = new Int32Array(workerData.seen);
parentPort.on('message', (m) => {
  Atomics.add(seen, 0, 1);
  if (m.crash === 'exit') process.exit(3);
  if (m.crash === 'throw') setTimeout(() => { throw new Error('boom'); });
  else if (m.fail) parentPort.postMessage({ id: m.id, ok: false, error: { message: 'bad job' } });
  else setTimeout(() => parentPort.postMessage({ id: m.id, ok: true, value: m.n * 2 }), m.delay ?? 0);
});
`,
);

type Job = { n?: number; delay?: number; crash?: 'exit' | 'throw'; fail?: boolean };

function pool(size: number, maxInFlight?: number) {
  const seen = new SharedArrayBuffer(4);
  const p = new WorkerPool<Job, number>({ size, workerUrl: pathToFileURL(worker), workerData: { seen }, maxInFlight });
  return { p, seen: () => Atomics.load(new Int32Array(seen), 0) };
}

describe('WorkerPool', () => {
  it('gives each job its own result, in submission order, whatever order they finish in', async () => {
    const { p } = pool(3);
    const delays = [40, 5, 25, 0, 15, 30, 1, 10];
    const results = await Promise.all(delays.map((delay, n) => p.run({ n, delay })));
    expect(results).toEqual(delays.map((_, n) => n * 2));
    await p.close();
  });

  it('holds at most maxInFlight jobs: later callers wait for room', async () => {
    const { p, seen } = pool(1, 2);
    let maxPending = 0;
    const jobs = Array.from({ length: 6 }, (_, n) =>
      p.run({ n, delay: 100 }).then((v) => {
        maxPending = Math.max(maxPending, p.pending);
        return v;
      }),
    );
    // The thread starts slowly: wait for it to take the first job, then give it time to take more.
    while (seen() === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 30));
    expect(p.pending).toBe(2);
    // One worker: only the first job has reached it; the second waits in the queue, the rest outside.
    expect(seen()).toBe(1);
    expect(await Promise.all(jobs)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(maxPending).toBeLessThanOrEqual(2);
    expect(seen()).toBe(6);
    await p.close();
  });

  it('fails the running and queued jobs when a worker exits, instead of hanging', async () => {
    const { p } = pool(1);
    const crash = p.run({ crash: 'exit' });
    const queued = p.run({ n: 1 });
    await expect(crash).rejects.toThrow(/worker thread failed: worker thread exited with code 3/);
    await expect(queued).rejects.toSatisfy((e) => isStrataError(e) && e.code === 'Internal');
    await expect(p.run({ n: 2 })).rejects.toThrow(/worker thread failed/);
    await p.close();
  });

  it('fails when a worker throws outside a job', async () => {
    const { p } = pool(2);
    await expect(p.run({ crash: 'throw' })).rejects.toThrow(/worker thread failed: boom/);
    await p.close();
  });

  it('rejects a job the worker reports as failed and keeps working', async () => {
    const { p } = pool(1);
    await expect(p.run({ fail: true })).rejects.toThrow(/worker job failed: bad job/);
    expect(await p.run({ n: 4 })).toBe(8);
    await p.close();
  });
});
