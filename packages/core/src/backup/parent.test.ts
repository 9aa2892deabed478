import { beforeEach, describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import { Repository } from '../repository/Repository.js';
import { keys } from '../repository/keys.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import type { ServerInfo } from '../postgres/connection.js';
import { backupLabel, planBackup } from './parent.js';

const server = { systemIdentifier: '7000', versionNum: 150018, blockSize: 8192 } as ServerInfo;
const manifest = (label: string, extra: Record<string, unknown> = {}) => ({
  label,
  type: label.includes('_') ? 'incr' : 'full',
  cluster: 'main',
  systemIdentifier: '7000',
  pgVersionNum: 150010,
  timeline: 1,
  options: { pageSize: 8192 },
  files: [],
  ...extra,
});

describe('planBackup', () => {
  let memory: MemoryBackend;
  let repo: Repository;
  const put = (label: string, extra?: Record<string, unknown>) =>
    repo.putSealed(keys.manifest('main', label), 'manifest', manifest(label, extra), 'zstd');

  beforeEach(async () => {
    memory = new MemoryBackend();
    repo = new Repository('mem', memory, new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]));
  });

  it('takes a full when asked, or when there is no full yet, saying so', async () => {
    expect(await planBackup(repo, 'main', 'full', server, 1)).toEqual({ type: 'full' });
    const auto = await planBackup(repo, 'main', 'auto', server, 1);
    expect(auto.type).toBe('full');
    expect(auto.note).toMatch(/instead of an incremental: there is no full backup yet/);
  });

  it('builds incr on the newest backup and diff on the newest full', async () => {
    await put('20261120-010000F');
    await put('20261120-010000F_20261121-010000I');
    const incr = await planBackup(repo, 'main', 'auto', server, 1);
    expect([incr.type, incr.parent?.label]).toEqual(['incr', '20261120-010000F_20261121-010000I']);
    const diff = await planBackup(repo, 'main', 'diff', server, 1);
    expect([diff.type, diff.parent?.label]).toEqual(['diff', '20261120-010000F']);
  });

  it.each([
    ['another timeline', { timeline: 1 }, 2, /the cluster is on timeline 2, backup 20261120-010000F on timeline 1/],
    ['another system', { systemIdentifier: '9999' }, 1, /is of another system \(9999\)/],
    ['another major version', { pgVersionNum: 140005 }, 1, /is of PostgreSQL 140005, the server runs 150018/],
  ])('falls back to a full on %s', async (_what, extra, timeline, message) => {
    await put('20261120-010000F', extra);
    const plan = await planBackup(repo, 'main', 'incr', server, timeline);
    expect(plan.type).toBe('full');
    expect(plan.note).toMatch(/taking a full backup instead of an incremental/);
    expect(plan.note).toMatch(message);
  });

  it('falls back to a full when the parent manifest is damaged', async () => {
    await put('20261120-010000F');
    const key = keys.manifest('main', '20261120-010000F');
    const data = memory.objects.get(key)!.data;
    data[data.length - 3] = data[data.length - 3]! ^ 1;
    const plan = await planBackup(repo, 'main', 'auto', server, 1);
    expect(plan.type).toBe('full');
    expect(plan.note).toMatch(/the newest backup 20261120-010000F cannot be read .*corrupt/);
  });

  it('labels incrementals and differentials after their full', () => {
    const at = new Date('2026-11-22T03:04:05Z');
    expect(backupLabel(at, 'full', undefined)).toBe('20261122-030405F');
    const parent = manifest('20261120-010000F_20261121-010000I') as never;
    expect(backupLabel(at, 'incr', parent)).toBe('20261120-010000F_20261122-030405I');
    expect(backupLabel(at, 'diff', parent)).toBe('20261120-010000F_20261122-030405D');
  });
});
