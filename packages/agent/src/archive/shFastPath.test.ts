import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { ArchiveSpool, fileIdentity, shIdentity } from '@strata/core/wal/spool';

/** bin/strata-archive-push: the sh fast path of asynchronous archiving. */
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'strata-archive-push');
const WAL = '00000001000000000000002A';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-sh-fast-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let dir: string;
let spoolDir: string;
let walPath: string;
let calls: string;
/** Stands in for node: records that it was started (and with what), exits 42. */
let fakeNode: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(root, 'case-'));
  spoolDir = path.join(dir, 'spool');
  fs.mkdirSync(spoolDir);
  fs.mkdirSync(path.join(dir, 'pg_wal'));
  walPath = path.join(dir, 'pg_wal', WAL);
  fs.writeFileSync(walPath, Buffer.alloc(64 * 1024, 7));
  calls = path.join(dir, 'node-calls');
  fakeNode = path.join(dir, 'fake-node');
  fs.writeFileSync(fakeNode, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\nexit 42\n`, { mode: 0o755 });
});

function run(args: string[]): { code: number | null; nodeStarted: string | undefined } {
  const r = spawnSync(SCRIPT, args, { env: { ...process.env, STRATA_NODE: fakeNode }, encoding: 'utf8' });
  return { code: r.status, nodeStarted: fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8') : undefined };
}

/** What the pusher writes once the file is stored (core/wal/pusher.ts): the identities taken before reading it. */
async function storedMarker(file: string, name = path.basename(file)): Promise<void> {
  const result = { walName: name, key: `main/wal/${name}`, sha256: 'ab'.repeat(32), size: 65536, storedBytes: 100, alreadyArchived: false };
  await new ArchiveSpool(spoolDir).writeStored(name, { id: shIdentity(file), result, source: await fileIdentity(file) });
}

describe('strata-archive-push (sh)', () => {
  it('matches `stat -L -c "%d %i %s %.9Y"` exactly in the marker Node writes', () => {
    const r = spawnSync('stat', ['-L', '-c', '%d %i %s %.9Y', '--', walPath], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe(shIdentity(walPath));
  });

  it('answers done without starting Node when the stored marker names this very file', async () => {
    await storedMarker(walPath);
    expect(run(['--spool', spoolDir, '--config', '/etc/strata/strata.yaml', walPath])).toEqual({ code: 0, nodeStarted: undefined });
  });

  it('starts strata archive-push with the same arguments when there is no marker', () => {
    const r = run(['--spool', spoolDir, walPath]);
    expect(r.code).toBe(42);
    expect(r.nodeStarted).toMatch(new RegExp(`run\\.js archive-push --spool ${spoolDir} ${walPath}\\n$`));
  });

  it('never acknowledges a file the marker does not describe', async () => {
    await storedMarker(walPath);
    // Rewritten in place after it was stored (same name, inode and size; new contents and mtime).
    const fd = fs.openSync(walPath, 'r+');
    fs.writeSync(fd, Buffer.alloc(10, 9), 0, 10, 100);
    fs.closeSync(fd);
    fs.utimesSync(walPath, new Date(), new Date(Date.now() + 5000));
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);

    // Another file under the same name (a restored cluster reusing names): another inode, or the same one reused with a new mtime.
    await storedMarker(walPath);
    fs.rmSync(walPath);
    fs.writeFileSync(walPath, Buffer.alloc(64 * 1024, 7));
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);

    // Same file, another size (truncated).
    await storedMarker(walPath);
    fs.truncateSync(walPath, 1000);
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);

    // A marker without the sh identity (an older pusher), or damaged.
    fs.writeFileSync(walPath, Buffer.alloc(64 * 1024, 7));
    await new ArchiveSpool(spoolDir).writeStored(WAL, {
      result: { walName: WAL, key: 'k', sha256: 's', size: 1, storedBytes: 1, alreadyArchived: false },
      source: await fileIdentity(walPath),
    });
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);
    fs.writeFileSync(path.join(spoolDir, `${WAL}.ok`), `{"id":"${shIdentity(walPath).slice(0, -1)}`);
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);

    // A marker in another directory than --spool names.
    const other = path.join(dir, 'other-spool');
    fs.mkdirSync(other);
    expect(run(['--spool', other, walPath]).code).toBe(42);

    // The only answer without Node: a marker for exactly this file.
    expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(6);
  });

  it("waits for the running pusher's verdict instead of starting Node, and still acknowledges only this very file", async () => {
    // A live process holding the lock stands in for the pusher.
    const pusher = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(spoolDir, 'pusher.lock'), `${pusher.pid}\n0\n`);
      const started = Date.now();
      const pending = new Promise<{ code: number | null; nodeStarted: string | undefined }>((resolve) => {
        const child = spawn(SCRIPT, ['--spool', spoolDir, walPath], { env: { ...process.env, STRATA_NODE: fakeNode }, stdio: 'ignore' });
        child.on('exit', (code) => resolve({ code, nodeStarted: fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8') : undefined }));
      });
      await new Promise((r) => setTimeout(r, 300));
      await storedMarker(walPath);
      expect(await pending).toEqual({ code: 0, nodeStarted: undefined });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);

      // A marker that does not describe this file: Node, at once, even with the pusher running.
      fs.appendFileSync(walPath, 'x');
      expect(run(['--spool', spoolDir, walPath]).code).toBe(42);
      // An error marker: Node reports it.
      fs.rmSync(path.join(spoolDir, `${WAL}.ok`));
      fs.writeFileSync(path.join(spoolDir, `${WAL}.error`), '{}');
      expect(run(['--spool', spoolDir, walPath]).code).toBe(42);
      expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toHaveLength(2);
    } finally {
      pusher.kill();
    }
  });

  it('does not wait when no live process holds the pusher lock', () => {
    fs.writeFileSync(path.join(spoolDir, 'pusher.lock'), '999999999\n0\n');
    const started = Date.now();
    expect(run(['--spool', spoolDir, walPath]).code).toBe(42);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('leaves .partial and .history files, and unexpected arguments, to Node', async () => {
    for (const name of [`${WAL}.partial`, '00000002.history']) {
      const file = path.join(dir, 'pg_wal', name);
      fs.writeFileSync(file, 'x');
      await storedMarker(file);
      expect(run(['--spool', spoolDir, file]).code).toBe(42);
    }
    await storedMarker(walPath);
    expect(run([walPath, '--spool', spoolDir]).code).toBe(42);
    expect(run(['--spool', spoolDir]).code).toBe(42);
  });
});
