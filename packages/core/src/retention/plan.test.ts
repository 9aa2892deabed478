import { describe, expect, it } from 'vitest';
import type { RetentionPolicy } from '../config/schema.js';
import { fullLabel } from '../manifest/label.js';
import type { BackupType } from '../manifest/types.js';
import type { ObjectInfo } from '../plugins/contract.js';
import { keys } from '../repository/keys.js';
import { labelTime, planRetention, type BackupFacts, type IncompleteFacts, type RetentionInput } from './plan.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;

/** A moment `days` before NOW. */
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

function stamp(at: Date): string {
  return fullLabel(at).slice(0, -1);
}

interface FactOptions {
  timeline?: number;
  startWal?: string;
  references?: string[];
}

/** A committed backup started at `at`, lasting one minute. Incrementals/diffs name their parent. */
function backup(at: Date, type: BackupType, parent?: BackupFacts, opts: FactOptions = {}): BackupFacts {
  const label = type === 'full' ? `${stamp(at)}F` : `${parent!.label.split('_')[0]}_${stamp(at)}${type === 'diff' ? 'D' : 'I'}`;
  return {
    label,
    type,
    parent: parent?.label ?? null,
    references: opts.references ?? (parent ? [...new Set([...parent.references, parent.label])].sort() : []),
    startTime: at.toISOString(),
    stopTime: new Date(at.getTime() + 60_000).toISOString(),
    timeline: opts.timeline ?? 1,
    startWal: opts.startWal ?? '000000010000000000000010',
  };
}

const wal = (name: string, size = 1000): ObjectInfo => ({ key: keys.walObject('main', name, 'a'.repeat(64), 'zst'), size });

function plan(policy: RetentionPolicy, backups: BackupFacts[], more: Partial<RetentionInput> = {}) {
  return planRetention({ policy, now: NOW, backups, incomplete: [], wal: [], ...more });
}

const labels = (ds: { label: string }[]) => ds.map((d) => d.label);

describe('labelTime', () => {
  it('reads the last stamp of full, incremental and differential labels', () => {
    expect(labelTime('20260301-120000F').toISOString()).toBe('2026-03-01T12:00:00.000Z');
    expect(labelTime('20260301-120000F_20260302-010203I').toISOString()).toBe('2026-03-02T01:02:03.000Z');
    expect(labelTime('20260301-120000F_20260303-235959D').toISOString()).toBe('2026-03-03T23:59:59.000Z');
  });
});

describe('retention of backups', () => {
  it('keeps everything when no retention is configured, and says so', () => {
    const f1 = backup(ago(30), 'full');
    const f2 = backup(ago(20), 'full');
    const p = plan({}, [f1, f2], { wal: [wal('000000010000000000000001')] });
    expect(p.configured).toBe(false);
    expect(labels(p.retained)).toEqual([f1.label, f2.label]);
    expect(p.expired).toEqual([]);
    expect(p.wal).toEqual([]);
    expect(p.notes.join('\n')).toMatch(/no retention configured.*keeping every backup and all WAL/);
  });

  it('full: 1 keeps the newest full and its incrementals, expires older chains', () => {
    const f1 = backup(ago(10), 'full');
    const f1i = backup(ago(9), 'incr', f1);
    const f2 = backup(ago(8), 'full');
    const f2i1 = backup(ago(7), 'incr', f2);
    const f2i2 = backup(ago(6), 'incr', f2i1);
    const f3 = backup(ago(5), 'full');
    const f3i1 = backup(ago(4), 'incr', f3);
    const f3i2 = backup(ago(3), 'incr', f3i1);
    // Given in another order than time: the planner sorts.
    const p = plan({ full: 1 }, [f3i2, f1, f2i2, f3, f1i, f2, f3i1, f2i1]);
    expect(labels(p.retained)).toEqual([f3.label, f3i1.label, f3i2.label]);
    expect(labels(p.expired)).toEqual([f1.label, f1i.label, f2.label, f2i1.label, f2i2.label]);
    const reason = (l: string) => p.expired.find((d) => d.label === l)?.reason;
    expect(reason(f1.label)).toMatch(/^not the newest full backup \(retention.full\)$/);
    expect(reason(f2i2.label)).toBe(`its full backup ${f2.label} is expired`);
    expect(p.retained.find((d) => d.label === f3i2.label)?.reason).toBe(`its full backup ${f3.label} is retained`);
    expect(p.expired.map((d) => d.type)).toEqual(['full', 'incr', 'full', 'incr', 'incr']);
  });

  it('full: 2 keeps two chains', () => {
    const f1 = backup(ago(10), 'full');
    const f2 = backup(ago(8), 'full');
    const f2d = backup(ago(7), 'diff', f2);
    const f3 = backup(ago(5), 'full');
    const p = plan({ full: 2 }, [f1, f2, f2d, f3]);
    expect(labels(p.retained)).toEqual([f2.label, f2d.label, f3.label]);
    expect(labels(p.expired)).toEqual([f1.label]);
  });

  it('never expires a backup that a retained backup references, even when the rule would', () => {
    const f1 = backup(ago(10), 'full');
    const f1i = backup(ago(9), 'incr', f1);
    const f2 = backup(ago(8), 'full');
    // An incremental of the retained chain whose files also point into f1's and f1i's packs.
    const f2i = backup(ago(7), 'incr', f2, { references: [f1.label, f1i.label, f2.label] });
    const p = plan({ full: 1 }, [f1, f1i, f2, f2i]);
    expect(labels(p.retained)).toEqual([f1.label, f1i.label, f2.label, f2i.label]);
    expect(p.expired).toEqual([]);
    expect(p.retained.find((d) => d.label === f1.label)?.reason).toBe(`referenced by retained backup ${f2i.label}`);
    expect(p.retained.find((d) => d.label === f1i.label)?.reason).toBe(`referenced by retained backup ${f2i.label}`);
  });

  it('keeps the references of a retained backup transitively, and only them', () => {
    const f1 = backup(ago(12), 'full');
    const f1i1 = backup(ago(11), 'incr', f1);
    const f1i2 = backup(ago(10), 'incr', f1i1);
    const f2 = backup(ago(8), 'full');
    // Points into f1i1 only; f1i1's own references (f1) must stay too, f1i2 can go.
    const f2i = backup(ago(7), 'incr', f2, { references: [f1i1.label, f2.label] });
    const p = plan({ full: 1 }, [f1, f1i1, f1i2, f2, f2i]);
    expect(labels(p.retained)).toEqual([f1.label, f1i1.label, f2.label, f2i.label]);
    expect(labels(p.expired)).toEqual([f1i2.label]);
    expect(p.retained.find((d) => d.label === f1.label)?.reason).toBe(`referenced by retained backup ${f1i1.label}`);
  });

  it('fullDays keeps fulls newer than the window and the newest older one, which covers its start', () => {
    const f30 = backup(ago(30), 'full');
    const f20 = backup(ago(20), 'full');
    const f20i = backup(ago(19), 'incr', f20);
    const f10 = backup(ago(10), 'full');
    const f10i = backup(ago(9), 'incr', f10);
    const f5 = backup(ago(5), 'full');
    const f1 = backup(ago(1), 'full');
    const p = plan({ fullDays: 7 }, [f30, f20, f20i, f10, f10i, f5, f1]);
    expect(labels(p.retained)).toEqual([f10.label, f10i.label, f5.label, f1.label]);
    expect(labels(p.expired)).toEqual([f30.label, f20.label, f20i.label]);
    expect(p.retained.find((d) => d.label === f10.label)?.reason).toMatch(/newest full backup older than 7 days/);
    expect(p.retained.find((d) => d.label === f5.label)?.reason).toBe('newer than 7 days (retention.fullDays)');
    expect(p.expired.find((d) => d.label === f20.label)?.reason).toMatch(/older than 7 days/);
  });

  it('fullDays compares the stop time with now, to the millisecond', () => {
    // Stopped exactly 2 days ago: not newer than 2 days, so only kept as the window's anchor.
    const edge = backup(new Date(ago(2).getTime() - 60_000), 'full');
    const older = backup(ago(3), 'full');
    const p = plan({ fullDays: 2 }, [older, edge]);
    expect(labels(p.expired)).toEqual([older.label]);
    expect(p.retained[0]?.reason).toMatch(/newest full backup older than 2 days/);
    // A fraction of a day works too.
    expect(labels(plan({ fullDays: 0.5 }, [backup(new Date(NOW.getTime() - 6 * HOUR), 'full')]).retained)).toHaveLength(1);
  });

  it('fullDays never expires the only full backup, however old', () => {
    const old = backup(ago(90), 'full');
    const oldI = backup(ago(80), 'incr', old);
    const p = plan({ fullDays: 7 }, [old, oldI]);
    expect(labels(p.retained)).toEqual([old.label, oldI.label]);
    expect(p.expired).toEqual([]);
  });

  it('full and fullDays together keep the union', () => {
    const f30 = backup(ago(30), 'full');
    const f20 = backup(ago(20), 'full');
    const f10 = backup(ago(10), 'full');
    const f5 = backup(ago(5), 'full');
    const f1 = backup(ago(1), 'full');
    // fullDays alone keeps f5 and f1 (newer than 7 days) and f10 (the anchor); full: 4 adds f20.
    const p = plan({ full: 4, fullDays: 7 }, [f30, f20, f10, f5, f1]);
    expect(labels(p.retained)).toEqual([f20.label, f10.label, f5.label, f1.label]);
    expect(labels(p.expired)).toEqual([f30.label]);
    expect(p.expired[0]?.reason).toBe(
      'not one of the 4 newest full backups (retention.full); older than 7 days with a newer full backup also older (retention.fullDays)',
    );
    // full: 1 adds nothing to what fullDays keeps.
    expect(labels(plan({ full: 1, fullDays: 7 }, [f30, f20, f10, f5, f1]).retained)).toEqual([f10.label, f5.label, f1.label]);
    // fullDays: 2 keeps f1 and the anchor f5; full: 3 adds f10.
    expect(labels(plan({ full: 3, fullDays: 2 }, [f30, f20, f10, f5, f1]).retained)).toEqual([f10.label, f5.label, f1.label]);
  });

  it('diff: N keeps the newest N differentials; older ones go with the incrementals built on them', () => {
    const f = backup(ago(10), 'full');
    const fi = backup(ago(9.5), 'incr', f);
    const d1 = backup(ago(9), 'diff', f);
    const d1i1 = backup(ago(8), 'incr', d1);
    const d1i2 = backup(ago(7), 'incr', d1i1);
    const d2 = backup(ago(6), 'diff', f);
    const d2i = backup(ago(5), 'incr', d2);
    const d3 = backup(ago(4), 'diff', f);
    const d3i = backup(ago(3), 'incr', d3);
    const all = [f, fi, d1, d1i1, d1i2, d2, d2i, d3, d3i];
    const p = plan({ diff: 1 }, all);
    expect(labels(p.retained)).toEqual([f.label, fi.label, d3.label, d3i.label]);
    expect(labels(p.expired)).toEqual([d1.label, d1i1.label, d1i2.label, d2.label, d2i.label]);
    const reason = (l: string) => p.expired.find((d) => d.label === l)?.reason;
    expect(reason(d1.label)).toBe('not the newest differential backup (retention.diff)');
    expect(reason(d1i2.label)).toMatch(new RegExp(`depends on expired backup (${d1.label}|${d1i1.label})`));
    expect(reason(d2i.label)).toBe(`depends on expired backup ${d2.label}`);

    const p2 = plan({ diff: 2 }, all);
    expect(labels(p2.expired)).toEqual([d1.label, d1i1.label, d1i2.label]);
    expect(labels(plan({ diff: 3 }, all).expired)).toEqual([]);
  });

  it('diff: N counts differentials of expired chains too, which are older', () => {
    const f1 = backup(ago(20), 'full');
    const f1d = backup(ago(19), 'diff', f1);
    const f2 = backup(ago(10), 'full');
    const f2d1 = backup(ago(9), 'diff', f2);
    const f2d2 = backup(ago(8), 'diff', f2);
    const p = plan({ full: 1, diff: 1 }, [f1, f1d, f2, f2d1, f2d2]);
    expect(labels(p.retained)).toEqual([f2.label, f2d2.label]);
    expect(p.expired.map((d) => [d.label, d.reason])).toEqual([
      [f1.label, 'not the newest full backup (retention.full)'],
      [f1d.label, `its full backup ${f1.label} is expired`],
      [f2d1.label, 'not the newest differential backup (retention.diff)'],
    ]);
  });

  it('expires an incremental whose full backup does not exist', () => {
    const gone = backup(ago(10), 'full');
    const orphan = backup(ago(9), 'incr', gone);
    const f = backup(ago(5), 'full');
    const p = plan({ full: 2 }, [orphan, f]);
    expect(labels(p.retained)).toEqual([f.label]);
    expect(p.expired).toEqual([{ label: orphan.label, type: 'incr', reason: `its full backup ${gone.label} does not exist` }]);
  });
});

describe('interrupted backups', () => {
  const f = backup(ago(2), 'full');
  const incomplete = (at: Date, lastModified?: Date): IncompleteFacts => ({
    label: `${stamp(at)}F`,
    ...(lastModified ? { lastModified } : {}),
  });

  it('are removed when a newer backup exists, however recent', () => {
    const young = incomplete(ago(3), new Date(NOW.getTime() - 60_000));
    const p = plan({ full: 1 }, [f], { incomplete: [young] });
    expect(p.interrupted).toEqual([{ label: young.label, reason: 'interrupted: a newer backup was taken since' }]);
    expect(p.inProgress).toEqual([]);
  });

  it('keep the newest one when it is newer than every backup and was written to within the hour', () => {
    const older = incomplete(ago(1), new Date(NOW.getTime() - 2 * 60_000));
    const running = incomplete(new Date(NOW.getTime() - 30 * 60_000), new Date(NOW.getTime() - 10_000));
    const p = plan({ full: 1 }, [f], { incomplete: [running, older] });
    expect(p.inProgress.map((i) => i.label)).toEqual([running.label]);
    expect(p.inProgress[0]?.reason).toMatch(/may still be running/);
    expect(p.interrupted).toEqual([{ label: older.label, reason: 'interrupted: a newer backup was started since' }]);
  });

  it('judge age by the newest object: a long backup still writing stays, a silent one goes', () => {
    const startedLongAgo = new Date(NOW.getTime() - 5 * HOUR);
    const writing = incomplete(startedLongAgo, new Date(NOW.getTime() - 5 * 60_000));
    expect(plan({}, [f], { incomplete: [writing] }).inProgress.map((i) => i.label)).toEqual([writing.label]);
    const silent = incomplete(startedLongAgo, new Date(NOW.getTime() - HOUR - 1));
    expect(plan({}, [f], { incomplete: [silent] }).interrupted).toEqual([
      { label: silent.label, reason: 'interrupted: nothing written to it for over an hour' },
    ]);
    // Without modification times, the label's time decides.
    const noTimes = incomplete(new Date(NOW.getTime() - 59 * 60_000));
    expect(plan({}, [], { incomplete: [noTimes] }).inProgress.map((i) => i.label)).toEqual([noTimes.label]);
    const noTimesOld = incomplete(new Date(NOW.getTime() - 61 * 60_000));
    expect(plan({}, [], { incomplete: [noTimesOld] }).interrupted.map((i) => i.label)).toEqual([noTimesOld.label]);
  });

  it('are removed even when no retention is configured; foreign directories are left alone', () => {
    const old = incomplete(ago(5));
    const p = plan({}, [f], { incomplete: [old, { label: 'lost+found' }] });
    expect(p.interrupted.map((i) => i.label)).toEqual([old.label]);
    expect(p.notes.join('\n')).toMatch(/left lost\+found alone/);
    expect(p.expired).toEqual([]);
  });
});

describe('WAL retention', () => {
  const names = (p: ReturnType<typeof plan>, timeline: number) =>
    p.wal
      .find((w) => w.timeline === timeline)
      ?.keys.map((k) => /\/([^/]+)-[0-9a-f]{64}\.zst$/.exec(k)![1])
      .sort();

  it('removes WAL before the oldest retained backup start on its timeline, with .backup and .partial files', () => {
    const f1 = backup(ago(10), 'full', undefined, { startWal: '000000010000000000000005' });
    const f2 = backup(ago(5), 'full', undefined, { startWal: '000000010000000000000010' });
    const f2i = backup(ago(4), 'incr', f2, { startWal: '000000010000000000000014' });
    const files = [
      wal('000000010000000000000004', 100),
      wal('000000010000000000000005', 100),
      wal('000000010000000000000005.00000028.backup', 1),
      wal('00000001000000000000000F', 100),
      wal('000000010000000000000010', 100),
      wal('000000010000000000000010.00000060.backup', 1),
      wal('000000010000000000000011', 100),
      wal('000000010000000100000000', 100),
    ];
    const p = plan({ full: 1 }, [f1, f2, f2i], { wal: files });
    expect(p.wal).toHaveLength(1);
    const w = p.wal[0]!;
    expect({ ...w, keys: undefined }).toEqual({
      timeline: 1,
      first: '000000010000000000000004',
      last: '00000001000000000000000F',
      count: 4,
      bytes: 301,
      keys: undefined,
      keepFrom: '000000010000000000000010',
    });
    expect(names(p, 1)).toEqual([
      '000000010000000000000004',
      '000000010000000000000005',
      '000000010000000000000005.00000028.backup',
      '00000001000000000000000F',
    ]);
    // Keeping both fulls keeps from f1's start.
    expect(names(plan({ full: 2 }, [f1, f2, f2i], { wal: files }), 1)).toEqual(['000000010000000000000004']);
  });

  it('removes older timelines whole except .history files, and keeps newer timelines', () => {
    const f1 = backup(ago(10), 'full', undefined, { startWal: '000000010000000000000003' });
    const f2 = backup(ago(5), 'full', undefined, { timeline: 2, startWal: '000000020000000000000010' });
    const files = [
      wal('000000010000000000000003'),
      wal('000000010000000000000020'),
      wal('000000010000000000000021.partial'),
      wal('00000002.history', 40),
      wal('00000003.history', 60),
      wal('00000002000000000000000E'),
      wal('000000020000000000000010'),
      wal('000000020000000000000012'),
      wal('000000030000000000000012'),
    ];
    const p = plan({ full: 1 }, [f1, f2], { wal: files });
    expect(p.wal.map((w) => [w.timeline, w.count, w.keepFrom])).toEqual([
      [1, 3, null],
      [2, 1, '000000020000000000000010'],
    ]);
    expect(names(p, 1)).toEqual(['000000010000000000000003', '000000010000000000000020', '000000010000000000000021.partial']);
    expect(names(p, 2)).toEqual(['00000002000000000000000E']);
    const removed = new Set(p.wal.flatMap((w) => w.keys));
    const kept = files.filter((f) => !removed.has(f.key)).map((f) => /\/([^/]+)-[0-9a-f]{64}\.zst$/.exec(f.key)![1]);
    expect(kept).toEqual([
      '00000002.history',
      '00000003.history',
      '000000020000000000000010',
      '000000020000000000000012',
      '000000030000000000000012',
    ]);
  });

  it('keeps newer timelines whole when an older-timeline backup is retained: recovery from it crosses into them', () => {
    const f1 = backup(ago(10), 'full', undefined, { startWal: '000000010000000000000005' });
    const f2 = backup(ago(5), 'full', undefined, { timeline: 2, startWal: '000000020000000000000030' });
    const files = [
      wal('000000010000000000000004'),
      wal('000000010000000000000005'),
      wal('000000020000000000000020'),
      wal('000000020000000000000031'),
    ];
    const p = plan({ full: 2 }, [f1, f2], { wal: files });
    expect(p.wal.map((w) => w.timeline)).toEqual([1]);
    expect(names(p, 1)).toEqual(['000000010000000000000004']);
  });

  it('removes no WAL when no backup is retained or none exists', () => {
    const files = [wal('000000010000000000000001'), wal('000000010000000000000002')];
    const p = plan({ full: 1 }, [], { wal: files });
    expect(p.wal).toEqual([]);
    expect(p.notes.join('\n')).toMatch(/no backup is retained: keeping all WAL/);
    // Only an orphaned incremental, which expires: nothing retained, WAL stays.
    const orphan = backup(ago(3), 'incr', backup(ago(4), 'full'));
    const p2 = plan({ full: 1 }, [orphan], { wal: files });
    expect(labels(p2.expired)).toEqual([orphan.label]);
    expect(p2.wal).toEqual([]);
  });

  it('ignores objects that are not WAL files', () => {
    const f = backup(ago(5), 'full', undefined, { startWal: '000000010000000000000010' });
    const p = plan({ full: 1 }, [f], {
      wal: [
        { key: 'main/wal/0000000100000000/README', size: 1 },
        { key: 'main/wal/junk-file.zst', size: 1 },
        wal('000000010000000000000001'),
      ],
    });
    expect(p.wal.map((w) => w.count)).toEqual([1]);
  });
});
