import { describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import { configSchema } from '../config/schema.js';
import type { Compressor, StorageBackend } from '../plugins/contract.js';
import { Repository } from '../repository/Repository.js';
import { keys } from '../repository/keys.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { chaosBackend } from '../testing/chaos.js';
import { runCheck } from './check.js';

const compressors = new Map<string, Compressor>([['zstd', zstdPlugin.create({ level: 3 }, { configDir: '.' }) as Compressor]]);
const LABEL = '20261122-010000F';

function repo(name: string, media: string, site: string, backend: StorageBackend = new MemoryBackend()): Repository {
  return new Repository(name, backend, compressors, undefined, { attempts: 1, baseDelayMs: 0 }, { media, site });
}

/** A committed backup (fresh) and two WAL files; `walFiles` limits how many this copy holds. */
async function seed(r: Repository, walFiles = 2, stopTime = new Date()): Promise<void> {
  await r.put(keys.pack('main', LABEL, 0), Buffer.from('pack'));
  await r.putSealed(keys.manifest('main', LABEL), 'manifest', { label: LABEL, stopTime: stopTime.toISOString() }, 'zstd');
  for (let i = 1; i <= walFiles; i++)
    await r.put(keys.walObject('main', `00000001000000000000000${i}`, String(i).repeat(64), 'zst'), Buffer.from('w'));
}

const config = (repos: string[]) =>
  configSchema.parse({
    clusters: { main: { pgdata: '/nonexistent/pgdata' } },
    repos: repos.map((name) => ({ name, plugin: 'fs', path: `/r/${name}` })),
  });
const check = (copies: Repository[]) =>
  runCheck({
    clusterName: 'main',
    cluster: config(['x']).clusters.main!,
    config: config(copies.map((c) => c.name)),
    copies,
    archiveCheck: false,
  });

describe('runCheck: the 3-2-1 verdict counted from what each repository holds', () => {
  it('meets the rule with the live cluster, a disk copy and an offsite object copy', async () => {
    const copies = [repo('local', 'disk', 'onsite'), repo('cloud', 'object', 'offsite')];
    for (const c of copies) await seed(c);
    const r = await check(copies);
    expect(r).toMatchObject({ ok: true, rule321: true, copies: 3, mediaKinds: ['disk', 'object'], offsiteCopies: 1, problems: [] });
    expect(r.newestBackup?.label).toBe(LABEL);
  });

  it('does not count a copy that lags (one WAL file short), and names what it misses', async () => {
    const copies = [repo('local', 'disk', 'onsite'), repo('cloud', 'object', 'offsite')];
    await seed(copies[0]!);
    await seed(copies[1]!, 1);
    const r = await check(copies);
    expect(r).toMatchObject({ ok: false, rule321: false, copies: 2, offsiteCopies: 0 });
    expect(r.repositories[1]).toMatchObject({ repo: 'cloud', level: false, counted: false, lag: { backups: 0, walFiles: 1 } });
    expect(r.repositories[1]!.lag.missingWal).toEqual([expect.stringMatching(/^000000010000000000000002-/)]);
    expect(r.problems.join('\n')).toMatch(/repository "cloud" lags: 0 backup\(s\) and 1 WAL file\(s\) missing/);
  });

  it("reads media and site from the tags on the copy's objects, not only the config", async () => {
    // Written as an onsite disk copy; the config now calls it offsite object storage: the objects say otherwise.
    const local = repo('local', 'disk', 'onsite');
    const backend = new MemoryBackend();
    await seed(repo('relabelled', 'disk', 'onsite', backend));
    await seed(local);
    const r = await check([local, repo('relabelled', 'object', 'offsite', backend)]);
    expect(r.repositories[1]).toMatchObject({ media: 'disk', site: 'onsite' });
    expect(r.rule321).toBe(false);
  });

  it('reports an unreachable repository and an old newest backup', async () => {
    const local = repo('local', 'disk', 'onsite');
    await seed(local, 2, new Date(Date.now() - 2 * 3_600_000));
    const dead = repo('cloud', 'object', 'offsite', chaosBackend(new MemoryBackend(), { failEvery: 1, retryable: false }));
    const r = await runCheck({
      clusterName: 'main',
      cluster: config(['x']).clusters.main!,
      config: config(['local', 'cloud']),
      copies: [local, dead],
      archiveCheck: false,
      maxBackupAgeHours: 1,
    });
    expect(r.repositories[1]).toMatchObject({ reachable: false, counted: false });
    expect(r.problems.join('\n')).toMatch(/"cloud" is unreachable/);
    expect(r.problems.join('\n')).toMatch(/newest backup .* h old \(limit/);
  });
});
