import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectStrataError, runStorageConformance, slowStream } from '@strata/core/testing';
import { FsBackend } from './FsBackend.js';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(tmpdir(), 'strata-fs-'));
}

runStorageConformance('fs', async () => {
  const dir = await tempDir();
  return { backend: new FsBackend({ path: dir, fsync: true }, '/'), cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});

describe('FsBackend', () => {
  let parent: string;
  let root: string;
  let backend: FsBackend;

  beforeEach(async () => {
    parent = await tempDir();
    root = path.join(parent, 'repo');
    backend = new FsBackend({ path: 'repo', fsync: false }, parent);
  });

  afterEach(async () => {
    await fs.chmod(root, 0o755).catch(() => undefined);
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('resolves a relative path against the config directory', () => {
    expect(backend.root).toBe(root);
    expect(backend.describe()).toBe(`fs:${root}`);
  });

  it('stores keys as files inside the root', async () => {
    await backend.put('c/wal/0001/seg', Buffer.from('wal'));
    expect(await fs.readFile(path.join(root, 'c', 'wal', '0001', 'seg'), 'utf8')).toBe('wal');
  });

  it('never writes outside the root for an escaping key', async () => {
    await fs.mkdir(root);
    for (const bad of ['../escaped', 'a/../../escaped', '/escaped']) {
      await expectStrataError(() => backend.put(bad, Buffer.from('x')), 'InvalidArgument');
    }
    expect(await fs.readdir(parent)).toEqual(['repo']);
    expect(await fs.readdir(root)).toEqual([]);
  });

  it('does not list the temporary file a crashed put leaves behind', async () => {
    await backend.put('c/wal/seg-1', Buffer.from('done'));
    await fs.writeFile(path.join(root, 'c', 'wal', 'seg-2.strata-tmp-0a1b2c3d4e5f'), 'half written');
    const listed: string[] = [];
    for await (const o of backend.list('c/')) listed.push(o.key);
    expect(listed).toEqual(['c/wal/seg-1']);
  });

  it('removes its temporary file when an upload is aborted', async () => {
    const controller = new AbortController();
    const body = slowStream((n) => {
      if (n === 3) setImmediate(() => controller.abort());
    });
    await expectStrataError(() => backend.put('c/x', body, { signal: controller.signal }), 'Aborted');
    expect(await fs.readdir(path.join(root, 'c'))).toEqual([]);
  });

  it('keeps tags in a sidecar tree that list() never shows and delete() removes', async () => {
    const tags = { 'strata-cluster': 'main', 'strata-kind': 'wal' };
    await backend.put('c/wal/seg', Buffer.from('wal'), { tags });
    expect(JSON.parse(await fs.readFile(path.join(root, '.strata-tags', 'c', 'wal', 'seg'), 'utf8'))).toEqual(tags);
    const listed: string[] = [];
    for await (const o of backend.list('')) listed.push(o.key);
    expect(listed).toEqual(['c/wal/seg']);
    await backend.put('c/wal/seg', Buffer.from('again'));
    expect((await backend.head('c/wal/seg'))?.tags).toBeUndefined();
    await backend.put('c/wal/seg', Buffer.from('wal'), { tags });
    await backend.delete(['c/wal/seg']);
    await expect(fs.stat(path.join(root, '.strata-tags', 'c', 'wal', 'seg'))).rejects.toThrow(/ENOENT/);
  });

  it('reserves the sidecar tree: no key may start with it', async () => {
    await expectStrataError(() => backend.put('.strata-tags/x', Buffer.from('x')), 'InvalidArgument');
  });

  // Root ignores permission bits, so these two can only run as another user (CI runs as root;
  // they pass as `nobody`). The e2e archive test covers EACCES through PostgreSQL as postgres.
  it.skipIf(process.getuid?.() === 0)('maps a read-only directory to PermissionDenied', async () => {
    await fs.mkdir(root);
    await fs.chmod(root, 0o555);
    const err = await expectStrataError(() => backend.put('x/object', Buffer.from('x')), 'PermissionDenied');
    expect(err.message).toContain('x/object');
    expect(err.hint).toMatch(/writable/);
    expect(err.retryable).toBe(false);
  });

  it.skipIf(process.getuid?.() === 0)('maps an unreadable object to PermissionDenied', async () => {
    await backend.put('x/secret', Buffer.from('x'));
    await fs.chmod(path.join(root, 'x', 'secret'), 0o000);
    await expectStrataError(() => backend.get('x/secret'), 'PermissionDenied');
  });
});
