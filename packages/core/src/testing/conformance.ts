import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataError } from '../errors/index.js';
import type { StorageBackend } from '../plugins/contract.js';
import { expectStrataError } from './assertions.js';
import { MiB, generatedStream, mapLimit, peakRss, readAll, sha256, sha256Of, slowStream } from './streamData.js';

export interface ConformanceBackend {
  backend: StorageBackend;
  cleanup?: () => Promise<void>;
}

export interface ConformanceOptions {
  /** The backend keeps objects in process memory (a test double): skip the bounded-memory check. */
  objectsInMemory?: boolean;
  /** Time allowed for each large-object case, in ms (default 120 000). */
  largeObjectTimeout?: number;
}

/** Size of the streamed round trip: larger than any sensible upload buffer, so buffering it whole shows. */
const STREAM_SIZE = 200 * MiB;
/** Memory the streamed round trip may add to the process: a third of the object's size. */
const MAX_STREAMING_RSS_GROWTH = 64 * MiB;

async function listKeys(backend: StorageBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of backend.list(prefix)) out.push(o.key);
  return out;
}

function lexical(keys: string[]): string[] {
  return [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The storage contract as a vitest suite. Every storage plugin runs it against a real server:
 *
 *   runStorageConformance('fs', async () => ({ backend: new FsBackend(...), cleanup }));
 *
 * All objects live under one run-specific prefix and are deleted afterwards, so the suite can
 * run against a shared bucket. Optional cases follow `backend.capabilities`.
 */
export function runStorageConformance(
  name: string,
  makeBackend: () => Promise<ConformanceBackend>,
  options: ConformanceOptions = {},
): void {
  const large = options.largeObjectTimeout ?? 120_000;

  describe(`storage conformance: ${name}`, () => {
    const run = `strata-conformance/${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    const made: Partial<ConformanceBackend> = {};
    let backend: StorageBackend;
    /** A key private to one case. */
    const k = (key: string) => `${run}/${key}`;

    beforeAll(async () => {
      Object.assign(made, await makeBackend());
      backend = made.backend!;
    }, 60_000);

    afterAll(async () => {
      try {
        if (made.backend) {
          const left = await listKeys(made.backend, `${run}/`);
          for (let i = 0; i < left.length; i += 500) await made.backend.delete(left.slice(i, i + 500));
          await made.backend.close?.();
        }
      } finally {
        await made.cleanup?.();
      }
    }, 120_000);

    describe('put and get', () => {
      it.each([
        ['0 B', 0],
        ['1 B', 1],
        ['8 MiB + 1 B', 8 * MiB + 1],
      ])(
        'round-trips a %s object',
        async (label, size) => {
          const key = k(`roundtrip/${label.replace(/\W+/g, '')}`);
          const data = randomBytes(size);
          await backend.put(key, data);
          expect(await sha256Of(await backend.get(key))).toBe(sha256(data));
          expect((await backend.head(key))?.size).toBe(size);
        },
        large,
      );

      it(
        `streams a ${STREAM_SIZE / MiB} MiB object both ways in bounded memory`,
        async () => {
          const key = k('stream/large');
          // Warm up first: a fresh process grows by tens of MiB on its first large transfer
          // (HTTP agents, garbage not yet collected) whatever the object's size. What must hold
          // is that memory does not grow with the object.
          const warm = generatedStream(32 * MiB);
          await backend.put(k('stream/warm-up'), warm.stream);
          expect(await sha256Of(await backend.get(k('stream/warm-up')))).toBe(warm.sha256);
          const { stream, sha256: expected } = generatedStream(STREAM_SIZE);
          const before = process.memoryUsage.rss();
          const { result: got, peak } = await peakRss(async () => {
            await backend.put(key, stream);
            return sha256Of(await backend.get(key));
          });
          expect(got).toBe(expected);
          expect((await backend.head(key))?.size).toBe(STREAM_SIZE);
          if (!options.objectsInMemory) expect(peak - before).toBeLessThan(MAX_STREAMING_RSS_GROWTH);
        },
        large,
      );

      it('reads byte ranges (capability readWithRange)', async (ctx) => {
        ctx.skip(!backend.capabilities.readWithRange, 'backend does not read ranges');
        const key = k('range/object');
        const data = randomBytes(1000);
        await backend.put(key, data);
        const ranges: [number, number | undefined][] = [
          [0, 1],
          [0, 10],
          [10, 500],
          [999, 1000],
          [990, undefined],
          [0, undefined],
          [5, 5],
        ];
        for (const [start, end] of ranges) {
          const got = await readAll(await backend.get(key, { range: { start, end } }));
          expect(got.equals(data.subarray(start, end)), `range ${start}..${end ?? 'end'}`).toBe(true);
        }
      });

      it('keeps no reference to a Buffer body once put resolved (callers reuse buffers)', async () => {
        const key = k('reuse/object');
        const body = randomBytes(256 * 1024);
        const expected = sha256(body);
        await backend.put(key, body);
        body.fill(0);
        expect(await sha256Of(await backend.get(key))).toBe(expected);
      });

      it('replaces an object when put without ifNoneMatch', async () => {
        const key = k('replace/object');
        await backend.put(key, Buffer.from('first version'));
        await backend.put(key, Buffer.from('second'));
        expect((await readAll(await backend.get(key))).toString()).toBe('second');
        expect((await backend.head(key))?.size).toBe(6);
      });

      it('shows every object of concurrent writers', async () => {
        const names = Array.from({ length: 32 }, (_, i) => k(`concurrent/w${i}`));
        const bodies = names.map(() => randomBytes(64 * 1024));
        await Promise.all(names.map((key, i) => backend.put(key, bodies[i]!)));
        expect(await listKeys(backend, k('concurrent/'))).toEqual(lexical(names));
        for (const [i, key] of names.entries()) expect(await sha256Of(await backend.get(key))).toBe(sha256(bodies[i]!));
      });

      it('leaves no visible object when an upload is aborted mid-stream', async () => {
        const key = k('abort/object');
        const controller = new AbortController();
        const body = slowStream((n) => {
          if (n === 4) setImmediate(() => controller.abort());
        });
        await expectStrataError(() => backend.put(key, body, { signal: controller.signal }), 'Aborted');
        expect(await backend.head(key)).toBeUndefined();
        expect(await listKeys(backend, k('abort/'))).toEqual([]);
      });

      it('rejects get of a missing key with NotFound', async () => {
        await expectStrataError(() => backend.get(k('missing/object')), 'NotFound');
      });

      it('treats a key that is only a prefix of other keys as missing', async () => {
        await backend.put(k('prefixonly/dir/object'), Buffer.from('x'));
        expect(await backend.head(k('prefixonly/dir'))).toBeUndefined();
        await expectStrataError(() => backend.get(k('prefixonly/dir')), 'NotFound');
      });
    });

    describe('head', () => {
      it('returns undefined for a missing key', async () => {
        expect(await backend.head(k('head/missing'))).toBeUndefined();
        expect(await backend.head(k('head/no/such/dir/missing'))).toBeUndefined();
      });

      it('returns the key and size of an existing object', async () => {
        const key = k('head/object');
        await backend.put(key, randomBytes(1234));
        expect(await backend.head(key)).toMatchObject({ key, size: 1234 });
      });

      it('returns the tags given to put (capability tags)', async (ctx) => {
        ctx.skip(!backend.capabilities.tags, 'backend does not store tags');
        const key = k('head/tagged');
        const tags = { cluster: 'main', kind: 'wal' };
        await backend.put(key, Buffer.from('x'), { tags });
        expect((await backend.head(key))?.tags).toEqual(tags);
      });
    });

    describe('list', () => {
      it(
        'returns exactly the keys under a prefix, in lexical order, across pages',
        async () => {
          // More keys than a page holds (listMaxKeys is 1000 on most stores); unpadded numbers
          // make lexical order differ from numeric order.
          const names = Array.from({ length: 1100 }, (_, i) => k(`many/obj-${i}`));
          await mapLimit(names, 16, (key) => backend.put(key, Buffer.from(key)));
          await backend.put(k('many-sibling'), Buffer.from('not under many/'));
          const listed: { key: string; size: number }[] = [];
          for await (const o of backend.list(k('many/'))) listed.push({ key: o.key, size: o.size });
          expect(listed.map((o) => o.key)).toEqual(lexical(names));
          for (const o of listed) expect(o.size).toBe(Buffer.byteLength(o.key));
        },
        large,
      );

      it('orders keys by bytes, not by path components', async () => {
        // '!', '-' and '.' sort before '/', so "a-b" comes before "a/b" although "a" < "a-b".
        const names = ['a/b', 'a0', 'a-b', 'a.b/c', 'a!'].map((n) => k(`order/${n}`));
        for (const key of names) await backend.put(key, Buffer.from('x'));
        expect(await listKeys(backend, k('order/'))).toEqual(lexical(names));
      });

      it('matches a prefix that ends inside a name', async () => {
        const names = ['a/b/x-1', 'a/b/x-2', 'a/b/x-dir/z', 'a/b/x', 'a/b/y', 'a/bx'];
        for (const n of names) await backend.put(k(`partial/${n}`), Buffer.from(n));
        expect(await listKeys(backend, k('partial/a/b/x-'))).toEqual(['a/b/x-1', 'a/b/x-2', 'a/b/x-dir/z'].map((n) => k(`partial/${n}`)));
        expect(await listKeys(backend, k('partial/a/b'))).toEqual(lexical(names).map((n) => k(`partial/${n}`)));
      });

      it('returns nothing for a prefix nothing starts with', async () => {
        expect(await listKeys(backend, k('list-nothing/'))).toEqual([]);
        expect(await listKeys(backend, k('list-nothing'))).toEqual([]);
      });
    });

    describe('delete', () => {
      it('removes objects and ignores missing keys', async () => {
        const keys = [k('delete/a'), k('delete/b')];
        for (const key of keys) await backend.put(key, Buffer.from('x'));
        await backend.delete([...keys, k('delete/never-written')]);
        for (const key of keys) expect(await backend.head(key)).toBeUndefined();
        expect(await listKeys(backend, k('delete/'))).toEqual([]);
      });

      it('is idempotent', async () => {
        const key = k('delete-twice/a');
        await backend.put(key, Buffer.from('x'));
        await backend.delete([key]);
        await backend.delete([key]);
        await backend.delete([k('delete-twice/no/such/dir')]);
        expect(await backend.head(key)).toBeUndefined();
      });
    });

    describe('conditional create (capability writeIfNotExists)', () => {
      it('creates a missing object, and refuses to replace it with AlreadyExists', async (ctx) => {
        ctx.skip(!backend.capabilities.writeIfNotExists, 'backend has no conditional create');
        const key = k('ifnonematch/object');
        await backend.put(key, Buffer.from('original'), { ifNoneMatch: true });
        await expectStrataError(() => backend.put(key, Buffer.from('intruder!'), { ifNoneMatch: true }), 'AlreadyExists');
        expect((await readAll(await backend.get(key))).toString()).toBe('original');
        expect((await backend.head(key))?.size).toBe(8);
      });

      it('lets exactly one of concurrent creators win', async (ctx) => {
        ctx.skip(!backend.capabilities.writeIfNotExists, 'backend has no conditional create');
        const key = k('ifnonematch/race');
        const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`writer ${i} `.repeat(1000)));
        const results = await Promise.allSettled(bodies.map((b) => backend.put(key, b, { ifNoneMatch: true })));
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as StrataError).code).toBe('AlreadyExists');
        expect((await readAll(await backend.get(key))).equals(bodies[winners[0]!]!)).toBe(true);
      });
    });

    describe('invalid keys', () => {
      for (const bad of ['../x', '/abs', 'a//b', 'a/../b']) {
        it(`rejects "${bad}" in every operation`, async () => {
          await expectStrataError(() => backend.put(bad, Buffer.from('x')), 'InvalidArgument');
          await expectStrataError(() => backend.get(bad), 'InvalidArgument');
          await expectStrataError(() => backend.head(bad), 'InvalidArgument');
          await expectStrataError(() => backend.delete([bad]), 'InvalidArgument');
        });
      }
    });
  });
}
