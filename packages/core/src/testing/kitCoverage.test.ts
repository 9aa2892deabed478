import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const PACKAGES = path.resolve(import.meta.dirname, '..', '..', '..');

function sources(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .flatMap((e) => (e.isFile() && e.name.endsWith('.ts') ? [path.join(e.parentPath, e.name)] : []));
}

/** Every storage plugin package in this repository runs the conformance kit in its tests. */
describe('conformance kit coverage', () => {
  const plugins = fs.readdirSync(PACKAGES).filter((d) => d.startsWith('plugin-'));
  const storage = plugins.filter((d) =>
    sources(path.join(PACKAGES, d, 'src'))
      .filter((f) => !f.endsWith('.test.ts'))
      .some((f) => /kind:\s*'storage'/.test(fs.readFileSync(f, 'utf8'))),
  );

  it('finds the storage plugins', () => {
    expect(storage).toContain('plugin-fs');
  });

  it.each(storage)('%s runs runStorageConformance in a test file', (dir) => {
    const tests = sources(path.join(PACKAGES, dir, 'src')).filter((f) => f.endsWith('.test.ts'));
    const running = tests.filter((f) => /runStorageConformance\(/.test(fs.readFileSync(f, 'utf8')));
    expect(running, `${dir} must call runStorageConformance from @strata/core/testing`).not.toEqual([]);
  });
});
