import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManifestFile } from '../manifest/types.js';
import { setMetadata } from './fileRestorer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-meta-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('setMetadata', () => {
  it('restores mtimes whose floor in milliseconds equals the manifest for every millisecond value', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const base = Date.UTC(2026, 10, 22, 3, 38, 5);
    const wrong: number[] = [];
    // 1000 consecutive milliseconds cover every fractional part a double can mangle.
    for (let ms = 0; ms < 1000; ms++) {
      const entry: ManifestFile = { path: 'f', type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: base + ms, size: 1 };
      await setMetadata(file, entry, { chown: false });
      if (Math.floor(fs.statSync(file).mtimeMs) !== entry.mtime) wrong.push(ms);
    }
    expect(wrong).toEqual([]);
  });
});
