import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noopLogger, type StorageBackend } from '@strata/core/base';
import { MemoryBackend, expectStrataError, readAll, runStorageConformance } from '@strata/core/testing';
import { FsBackend } from '@strata/plugin-fs';
import plugin from './index.js';
import { CHUNK_SIZE, HEADER_SIZE, TAG_SIZE, storedSize } from './format.js';
import { KEYRING_RE } from './keyring.js';
import { metadataCacheDir, type PgpEncryptor } from './PgpEncryptor.js';
import { makeTestKey, type TestKey } from './testKeys.test-helper.js';

let dir: string;
let alice: TestKey;
let bob: TestKey;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-enc-'));
  [alice, bob] = await Promise.all([makeTestKey(dir, 'alice'), makeTestKey(dir, 'bob', 'bob-key-passphrase')]);
}, 60_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function encryptor(options: Record<string, unknown>): Promise<PgpEncryptor> {
  return (await plugin.create(plugin.configSchema.parse(options), { configDir: dir })) as PgpEncryptor;
}

function context(name = 'main') {
  return { repoName: name, stateDir: path.join(dir, 'state'), logger: noopLogger };
}

async function wrapped(inner: StorageBackend, options: Record<string, unknown>): Promise<StorageBackend> {
  return (await encryptor(options)).wrap(inner, context());
}

const aliceFull = () => ({ publicKeys: [alice.publicFile], privateKeys: [alice.privateFile] });

runStorageConformance('fs, encrypted with encrypt-pgp', async () => {
  const root = await fs.mkdtemp(path.join(tmpdir(), 'strata-enc-fs-'));
  const enc = await encryptor({ publicKeys: [alice.publicFile], privateKeys: [alice.privateFile] });
  return {
    backend: enc.wrap(new FsBackend({ path: root, fsync: false }, '/'), context()),
    cleanup: () => fs.rm(root, { recursive: true, force: true }),
  };
});

describe('encrypted objects', () => {
  it('stores nothing of the plaintext, and sizes are plaintext sizes', async () => {
    const mem = new MemoryBackend();
    const backend = await wrapped(mem, aliceFull());
    const marker = Buffer.from('MARKER-'.repeat(5000));
    await backend.put('c/backup/L/pack/000000', marker);
    const stored = mem.objects.get('c/backup/L/pack/000000')!.data;
    expect(stored.length).toBe(storedSize(marker.length));
    expect(stored.includes(Buffer.from('MARKER-'))).toBe(false);
    expect((await backend.head('c/backup/L/pack/000000'))?.size).toBe(marker.length);
    const listed = [];
    for await (const o of backend.list('c/')) listed.push(o);
    // The keyring entry exists in the store but not in listings.
    expect(listed.map((o) => o.key)).toEqual(['c/backup/L/pack/000000']);
    expect([...mem.objects.keys()].filter((k) => KEYRING_RE.test(k))).toHaveLength(1);
  });

  it('wraps one data key per cluster per process, not per object', async () => {
    const mem = new MemoryBackend();
    const backend = await wrapped(mem, aliceFull());
    for (let i = 0; i < 20; i++) await backend.put(`c/wal/0000000100000000/seg-${i}`, randomBytes(100));
    await backend.put('d/cluster.info', Buffer.from('{}'));
    const entries = [...mem.objects.keys()].filter((k) => KEYRING_RE.test(k));
    expect(entries.map((k) => k.split('/')[0]).sort()).toEqual(['c', 'd']);
  });

  it('reads any byte range, across chunk boundaries, with one ranged read per range once the header is known', async () => {
    const mem = new MemoryBackend();
    const backend = await wrapped(mem, aliceFull());
    const data = randomBytes(3 * CHUNK_SIZE + 1234);
    await backend.put('c/backup/L/pack/000001', data);
    const gets: (undefined | { start: number; end?: number })[] = [];
    const orig = mem.get.bind(mem);
    mem.get = (key, options) => {
      gets.push(options?.range);
      return orig(key, options);
    };
    const cases: [number, number | undefined][] = [
      [0, 1],
      [CHUNK_SIZE - 1, CHUNK_SIZE + 1],
      [5, 3 * CHUNK_SIZE + 1234],
      [2 * CHUNK_SIZE, 3 * CHUNK_SIZE],
      [3 * CHUNK_SIZE + 1000, 3 * CHUNK_SIZE + 5000],
      [CHUNK_SIZE + 7, undefined],
      [data.length, undefined],
      [data.length + 10, data.length + 20],
      [100, 100],
    ];
    for (const [start, end] of cases) {
      const got = await readAll(await backend.get('c/backup/L/pack/000001', { range: { start, end } }));
      expect(got.equals(data.subarray(start, end)), `range ${start}..${end}`).toBe(true);
    }
    for (let i = 0; i < 50; i++) {
      const start = Math.floor(Math.random() * data.length);
      const end = start + Math.floor(Math.random() * 200_000);
      const got = await readAll(await backend.get('c/backup/L/pack/000001', { range: { start, end } }));
      expect(got.equals(data.subarray(start, end))).toBe(true);
    }
    gets.length = 0;
    await readAll(await backend.get('c/backup/L/pack/000001', { range: { start: 70_000, end: 80_000 } }));
    expect(gets).toEqual([{ start: HEADER_SIZE + (CHUNK_SIZE + TAG_SIZE), end: HEADER_SIZE + 2 * (CHUNK_SIZE + TAG_SIZE) }]);
  });
});

describe('tamper detection', () => {
  const key = 'c/backup/L/pack/000002';
  let mem: MemoryBackend;
  let data: Buffer;
  let pristine: Buffer;

  beforeAll(async () => {
    mem = new MemoryBackend();
    const backend = await wrapped(mem, aliceFull());
    data = randomBytes(2 * CHUNK_SIZE + 100);
    await backend.put(key, data);
    pristine = Buffer.from(mem.objects.get(key)!.data);
  });

  /** A fresh reader (no cached header or key) over the store with `stored` under `key`. */
  async function readWith(stored: Buffer, range?: { start: number; end?: number }): Promise<Buffer> {
    mem.objects.get(key)!.data = stored;
    const backend = await wrapped(mem, aliceFull());
    return readAll(await backend.get(key, range ? { range } : {}));
  }

  it('reads the untouched object', async () => {
    expect((await readWith(pristine)).equals(data)).toBe(true);
  });

  it('reports a flipped bit in every header byte as Integrity naming the object', async () => {
    for (let i = 0; i < HEADER_SIZE; i++) {
      const bad = Buffer.from(pristine);
      bad[i]! ^= 0x01;
      const err = await expectStrataError(() => readWith(bad), 'Integrity');
      expect(err.message, `header byte ${i}`).toContain(key);
    }
  });

  it('reports a flipped byte in each chunk, body and tag, for whole and ranged reads', async () => {
    const positions = [
      HEADER_SIZE,
      HEADER_SIZE + 1000,
      HEADER_SIZE + CHUNK_SIZE + 3,
      HEADER_SIZE + CHUNK_SIZE + TAG_SIZE + 5,
      pristine.length - 1,
    ];
    for (const at of positions) {
      const bad = Buffer.from(pristine);
      bad[at]! ^= 0x80;
      expect((await expectStrataError(() => readWith(bad), 'Integrity')).message).toContain(key);
      const chunk = Math.floor((at - HEADER_SIZE) / (CHUNK_SIZE + TAG_SIZE));
      const err = await expectStrataError(() => readWith(bad, { start: chunk * CHUNK_SIZE, end: chunk * CHUNK_SIZE + 10 }), 'Integrity');
      expect(err.message).toContain(key);
    }
  });

  it('detects a cut at a chunk boundary, a dropped chunk, swapped chunks and an object moved to another key', async () => {
    const full = CHUNK_SIZE + TAG_SIZE;
    const cut = pristine.subarray(0, HEADER_SIZE + 2 * full);
    expect((await expectStrataError(() => readWith(Buffer.from(cut)), 'Integrity')).message).toMatch(/cut short|authentication/);
    await expectStrataError(() => readWith(Buffer.from(cut), { start: 2 * CHUNK_SIZE, end: 2 * CHUNK_SIZE + 50 }), 'Integrity');
    await expectStrataError(() => readWith(Buffer.from(cut), { start: CHUNK_SIZE + 10, end: 3 * CHUNK_SIZE }), 'Integrity');
    const dropped = Buffer.concat([pristine.subarray(0, HEADER_SIZE + full), pristine.subarray(HEADER_SIZE + 2 * full)]);
    await expectStrataError(() => readWith(dropped), 'Integrity');
    const swapped = Buffer.concat([
      pristine.subarray(0, HEADER_SIZE),
      pristine.subarray(HEADER_SIZE + full, HEADER_SIZE + 2 * full),
      pristine.subarray(HEADER_SIZE, HEADER_SIZE + full),
      pristine.subarray(HEADER_SIZE + 2 * full),
    ]);
    await expectStrataError(() => readWith(swapped), 'Integrity');
    mem.objects.get(key)!.data = pristine;
    mem.objects.set('c/backup/L/pack/000003', { data: Buffer.from(pristine), mtime: new Date() });
    const backend = await wrapped(mem, aliceFull());
    const err = await expectStrataError(async () => readAll(await backend.get('c/backup/L/pack/000003')), 'Integrity');
    expect(err.message).toContain('c/backup/L/pack/000003');
  });

  it('refuses a clear (unencrypted) object in an encrypted repository', async () => {
    await expectStrataError(() => readWith(Buffer.from('STRATA manifest 1 zstd 00\n{}')), 'Integrity');
  });

  it('reports a damaged keyring entry as Integrity', async () => {
    mem.objects.get(key)!.data = pristine;
    const entryKey = [...mem.objects.keys()].find((k) => KEYRING_RE.test(k))!;
    const entry = mem.objects.get(entryKey)!;
    const saved = entry.data;
    entry.data = Buffer.from(saved);
    entry.data[entry.data.length - 5]! ^= 0x01;
    try {
      const err = await expectStrataError(() => readWith(pristine), 'Integrity');
      expect(err.message).toContain(key);
      expect(err.message).toContain(entryKey);
    } finally {
      entry.data = saved;
    }
  });
});

describe('keys', () => {
  it('names the fingerprint needed when the wrong private key or none is configured', async () => {
    const mem = new MemoryBackend();
    await (await wrapped(mem, aliceFull())).put('c/backup/L/manifest', Buffer.from('secret manifest'));
    const wrong = await wrapped(mem, {
      publicKeys: [bob.publicFile],
      privateKeys: [bob.privateFile],
      privateKeyPassphrase: { env: 'STRATA_TEST_BOB_PASS' },
    });
    process.env.STRATA_TEST_BOB_PASS = 'bob-key-passphrase';
    const err = await expectStrataError(async () => readAll(await wrong.get('c/backup/L/manifest')), 'ConfigInvalid');
    expect(err.message).toContain(alice.fingerprint.toUpperCase());
    expect(err.message).toContain(bob.fingerprint.toUpperCase());
    expect(err.message).not.toContain('bob-key-passphrase');
    const none = (await encryptor({ publicKeys: [bob.publicFile] })).wrap(mem, context('none'));
    const err2 = await expectStrataError(async () => readAll(await none.get('c/backup/L/manifest')), 'ConfigInvalid');
    expect(err2.message).toContain(alice.fingerprint.toUpperCase());
    expect(err2.message).toContain('public keys only');
    delete process.env.STRATA_TEST_BOB_PASS;
  });

  it('works with a passphrase from a file, env or command, and never shows the passphrase', async () => {
    const secret = `pw-${randomBytes(8).toString('hex')}`;
    const file = path.join(dir, 'pass.txt');
    await fs.writeFile(file, `${secret}\n`, { mode: 0o600 });
    process.env.STRATA_TEST_PASS = secret;
    const mem = new MemoryBackend();
    await (await wrapped(mem, { passphrase: { file } })).put('c/backup/L/manifest', Buffer.from('payload'));
    for (const passphrase of [{ env: 'STRATA_TEST_PASS' }, { command: `cat ${file}` }, { command: ['/bin/cat', file] }]) {
      const b = await wrapped(mem, { passphrase });
      expect((await readAll(await b.get('c/backup/L/manifest'))).toString()).toBe('payload');
    }
    process.env.STRATA_TEST_PASS = `${secret}-wrong`;
    const bad = await wrapped(mem, { passphrase: { env: 'STRATA_TEST_PASS' } });
    const err = await expectStrataError(async () => readAll(await bad.get('c/backup/L/manifest')), 'ConfigInvalid');
    expect(err.message).toContain('passphrase');
    expect(JSON.stringify({ m: err.message, h: err.hint, c: err.context })).not.toContain(secret);
    const failing = await wrapped(mem, { passphrase: { command: `echo ${secret}; exit 3` } });
    const err3 = await expectStrataError(async () => readAll(await failing.get('c/backup/L/manifest')), 'ConfigInvalid');
    expect(`${err3.message} ${err3.hint} ${String(err3.cause)}`).not.toContain(secret);
    delete process.env.STRATA_TEST_PASS;
    expect(plugin.configSchema.safeParse({ passphrase: secret }).success).toBe(false);
    expect(JSON.stringify(plugin.configSchema.safeParse({ passphrase: secret }).error?.issues)).not.toContain(secret);
  });

  it('rotates: re-wraps every data key for the new recipients without touching data objects', async () => {
    const mem = new MemoryBackend();
    const old = await wrapped(mem, aliceFull());
    await old.put('c/backup/L/pack/000000', Buffer.from('pack data'));
    const second = await wrapped(mem, aliceFull());
    await second.put('c/wal/0000000100000000/000000010000000000000001-aa.zst', Buffer.from('wal data'));
    const before = new Map([...mem.objects].filter(([k]) => !KEYRING_RE.test(k)).map(([k, v]) => [k, Buffer.from(v.data)]));
    const rotating = await encryptor({
      publicKeys: [bob.publicFile],
      privateKeys: [alice.privateFile],
    });
    expect(await rotating.rotate(mem, context(), ['c'])).toEqual({ dataKeys: 2, rewrapped: 2, unchanged: 0 });
    expect(await rotating.rotate(mem, context(), ['c'])).toEqual({ dataKeys: 2, rewrapped: 0, unchanged: 2 });
    for (const [k, v] of before) expect(mem.objects.get(k)!.data.equals(v)).toBe(true);
    process.env.STRATA_TEST_BOB_PASS = 'bob-key-passphrase';
    const bobOnly = await wrapped(mem, {
      publicKeys: [bob.publicFile],
      privateKeys: [bob.privateFile],
      privateKeyPassphrase: { env: 'STRATA_TEST_BOB_PASS' },
    });
    expect((await readAll(await bobOnly.get('c/backup/L/pack/000000'))).toString()).toBe('pack data');
    expect((await readAll(await bobOnly.get('c/wal/0000000100000000/000000010000000000000001-aa.zst'))).toString()).toBe('wal data');
    delete process.env.STRATA_TEST_BOB_PASS;
    // Without a key that opens the old entries, rotation names what it needs.
    const stranger = await makeTestKey(dir, 'stranger');
    const cannot = await encryptor({ publicKeys: [stranger.publicFile], privateKeys: [stranger.privateFile] });
    const err = await expectStrataError(() => cannot.rotate(mem, context(), ['c']), 'ConfigInvalid');
    expect(err.message).toContain(bob.fingerprint.toUpperCase());
  });
});

describe('passphrase rotation', () => {
  it('moves to a new passphrase with the old one listed under previousPassphrases, and reads without the old one', async () => {
    const oldFile = path.join(dir, 'old.pass');
    const newFile = path.join(dir, 'new.pass');
    await fs.writeFile(oldFile, 'old passphrase');
    await fs.writeFile(newFile, 'new passphrase');
    const mem = new MemoryBackend();
    await (await wrapped(mem, { passphrase: { file: oldFile } })).put('c/backup/L/manifest', Buffer.from('payload'));
    const rotating = await encryptor({ passphrase: { file: newFile }, previousPassphrases: [{ file: oldFile }] });
    expect(await rotating.rotate(mem, context(), ['c'])).toEqual({ dataKeys: 1, rewrapped: 1, unchanged: 0 });
    expect(await rotating.rotate(mem, context(), ['c'])).toEqual({ dataKeys: 1, rewrapped: 0, unchanged: 1 });
    const fresh = await wrapped(mem, { passphrase: { file: newFile } });
    expect((await readAll(await fresh.get('c/backup/L/manifest'))).toString()).toBe('payload');
  });

  it('opens entries wrapped for a key only or a passphrase only when both are configured', async () => {
    const passFile = path.join(dir, 'both.pass');
    await fs.writeFile(passFile, 'both passphrase');
    const mem = new MemoryBackend();
    await (await wrapped(mem, aliceFull())).put('k/backup/L/manifest', Buffer.from('key only'));
    await (await wrapped(mem, { passphrase: { file: passFile } })).put('p/backup/L/manifest', Buffer.from('passphrase only'));
    const both = await wrapped(mem, { ...aliceFull(), passphrase: { file: passFile } });
    expect((await readAll(await both.get('k/backup/L/manifest'))).toString()).toBe('key only');
    expect((await readAll(await both.get('p/backup/L/manifest'))).toString()).toBe('passphrase only');
  });

  it('opens an entry wrapped for a key and a passphrase with either alone', async () => {
    const passFile = path.join(dir, 'mixed.pass');
    await fs.writeFile(passFile, 'mixed passphrase');
    const mem = new MemoryBackend();
    await (
      await wrapped(mem, { publicKeys: [alice.publicFile], passphrase: { file: passFile } })
    ).put('m/cluster.info', Buffer.from('mixed'));
    for (const reader of [{ passphrase: { file: passFile } }, aliceFull()]) {
      expect((await readAll(await (await wrapped(mem, reader)).get('m/cluster.info'))).toString()).toBe('mixed');
    }
  });

  it('reads ranges from a store without ranged reads', async () => {
    const mem = new MemoryBackend();
    (mem as { capabilities: { readWithRange: boolean } }).capabilities = { ...mem.capabilities, readWithRange: false };
    const backend = await wrapped(mem, aliceFull());
    const data = randomBytes(CHUNK_SIZE + 500);
    await backend.put('c/backup/L/pack/000000', data);
    expect(
      (await readAll(await backend.get('c/backup/L/pack/000000', { range: { start: 100, end: CHUNK_SIZE + 10 } }))).equals(
        data.subarray(100, CHUNK_SIZE + 10),
      ),
    ).toBe(true);
  });
});

describe('public-key-only host', () => {
  it('reads back the metadata it wrote from a 0600 local copy, never packs, and drops the copy when the object is replaced', async () => {
    const mem = new MemoryBackend();
    const enc = await encryptor({ publicKeys: [alice.publicFile] });
    const ctx = context('pubonly');
    const backend = enc.wrap(mem, ctx);
    await backend.put('c/backup/L/manifest', Buffer.from('{"label":"L"}'));
    await backend.put('c/backup/L/pack/000000', Buffer.from('pack'));
    expect((await readAll(await backend.get('c/backup/L/manifest'))).toString()).toBe('{"label":"L"}');
    const err = await expectStrataError(async () => readAll(await backend.get('c/backup/L/pack/000000')), 'ConfigInvalid');
    expect(err.message).toContain(alice.fingerprint.toUpperCase());
    const dirOfL = path.join(metadataCacheDir(ctx.stateDir, ctx.repoName), 'c', 'backup', 'L');
    const copies = await fs.readdir(dirOfL);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatch(/^manifest@[0-9a-f]{64}$/);
    expect((await fs.stat(path.join(dirOfL, copies[0]!))).mode & 0o777).toBe(0o600);
    expect((await fs.stat(dirOfL)).mode & 0o777).toBe(0o700);
    // Another host replaced the object: the local copy no longer applies.
    await (await wrapped(mem, aliceFull())).put('c/backup/L/manifest', Buffer.from('{"label":"other"}'));
    await expectStrataError(async () => readAll(await enc.wrap(mem, ctx).get('c/backup/L/manifest')), 'ConfigInvalid');
    await expectStrataError(() => enc.assertCanDecrypt(), 'ConfigInvalid');
    // Deleting the object (expire) removes its copies.
    await enc.wrap(mem, ctx).delete(['c/backup/L/manifest']);
    expect(await fs.readdir(dirOfL)).toEqual([]);
  });

  it('keeps the copies of two repositories with the same name and state directory apart', async () => {
    const enc = await encryptor({ publicKeys: [alice.publicFile] });
    const ctx = context('same-name');
    const [m1, m2] = [new MemoryBackend(), new MemoryBackend()];
    await enc.wrap(m1, ctx).put('c/cluster.info', Buffer.from('one'));
    await enc.wrap(m2, ctx).put('c/cluster.info', Buffer.from('two'));
    expect((await readAll(await enc.wrap(m1, ctx).get('c/cluster.info'))).toString()).toBe('one');
    expect((await readAll(await enc.wrap(m2, ctx).get('c/cluster.info'))).toString()).toBe('two');
  });
});
