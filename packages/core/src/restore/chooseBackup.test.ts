import { beforeAll, describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import { Repository } from '../repository/Repository.js';
import { keys } from '../repository/keys.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { expectStrataError } from '../testing/assertions.js';
import { parseLsn } from '../postgres/walNames.js';
import { chooseBackup } from './chooseBackup.js';
import { parseTargetTime, type RecoveryTarget } from './target.js';

const backups = [
  { label: '20261120-010000F', stopTime: '2026-11-20T01:05:00.000Z', stopLsn: '0/5000100' },
  { label: '20261121-010000F', stopTime: '2026-11-21T01:05:00.000Z', stopLsn: '0/9000100' },
  { label: '20261122-010000F', stopTime: '2026-11-22T01:05:00.000Z', stopLsn: '1/2000100' },
];

const time = (text: string): RecoveryTarget => ({ kind: 'time', time: parseTargetTime(text), text });
const lsn = (text: string): RecoveryTarget => ({ kind: 'lsn', lsn: parseLsn(text), text });

describe('chooseBackup', () => {
  const memory = new MemoryBackend();
  let repo: Repository;

  beforeAll(async () => {
    repo = new Repository('local', memory, new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]));
    for (const b of backups) {
      await repo.putSealed(keys.manifest('main', b.label), 'manifest', { ...b, cluster: 'main', files: [] }, 'zstd');
    }
    // An interrupted backup (packs, no manifest) is never a candidate.
    await memory.put(keys.pack('main', '20261123-010000F', 0), Buffer.from('partial'));
  });

  it('picks the newest committed backup without a target', async () => {
    expect((await chooseBackup(repo, 'main', undefined, undefined)).label).toBe('20261122-010000F');
  });

  it('picks the newest backup that finished before a time target', async () => {
    expect((await chooseBackup(repo, 'main', undefined, time('2026-11-21 12:00:00+00'))).label).toBe('20261121-010000F');
    expect((await chooseBackup(repo, 'main', undefined, time('2026-11-21 01:05:00+00'))).label).toBe('20261121-010000F');
    expect((await chooseBackup(repo, 'main', undefined, time('2026-11-21 01:04:59+00'))).label).toBe('20261120-010000F');
    // The same instant written in another zone.
    expect((await chooseBackup(repo, 'main', undefined, time('2026-11-21 03:04:59+02'))).label).toBe('20261120-010000F');
  });

  it('picks by stop LSN for an LSN target', async () => {
    expect((await chooseBackup(repo, 'main', undefined, lsn('0/9000100'))).label).toBe('20261121-010000F');
    expect((await chooseBackup(repo, 'main', undefined, lsn('0/FFFFFFFF'))).label).toBe('20261121-010000F');
  });

  it('explains when no backup is old enough', async () => {
    const err = await expectStrataError(() => chooseBackup(repo, 'main', undefined, time('2026-11-19 00:00:00+00')), 'NotFound');
    expect(err.message).toMatch(/the oldest \(20261120-010000F\) finished at 2026-11-20T01:05:00.000Z/);
  });

  it('honours --set, refusing an unknown label or one that finished after the target', async () => {
    expect((await chooseBackup(repo, 'main', '20261120-010000F', undefined)).label).toBe('20261120-010000F');
    await expectStrataError(() => chooseBackup(repo, 'main', '20261123-010000F', undefined), 'NotFound');
    const err = await expectStrataError(
      () => chooseBackup(repo, 'main', '20261122-010000F', time('2026-11-21 12:00:00+00')),
      'Precondition',
    );
    expect(err.message).toMatch(/finished at .* after the recovery target/);
  });

  it('says how to take a first backup when there is none', async () => {
    const err = await expectStrataError(() => chooseBackup(repo, 'other', undefined, undefined), 'NotFound');
    expect(err.hint).toMatch(/strata backup/);
  });
});
