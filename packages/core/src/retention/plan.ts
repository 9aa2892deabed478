import type { RetentionPolicy } from '../config/schema.js';
import { LABEL_RE } from '../manifest/label.js';
import type { BackupType, Manifest } from '../manifest/types.js';
import type { ObjectInfo } from '../plugins/contract.js';
import { HISTORY_RE, isWalFileName } from '../postgres/walNames.js';
import { parseWalObjectName } from '../repository/keys.js';

/** What the planner needs of a committed backup: its manifest's identity and WAL fields. */
export type BackupFacts = Pick<Manifest, 'label' | 'type' | 'parent' | 'references' | 'startTime' | 'stopTime' | 'timeline' | 'startWal'>;

/** An interrupted backup: a label with objects but no manifest. */
export interface IncompleteFacts {
  label: string;
  /** Newest modification time of its objects, when the backend reports one. */
  lastModified?: Date;
}

export interface RetentionInput {
  policy: RetentionPolicy;
  now: Date;
  backups: BackupFacts[];
  incomplete: IncompleteFacts[];
  /** Every object under `<cluster>/wal/`. */
  wal: ObjectInfo[];
}

export interface BackupDecision {
  label: string;
  type: BackupType;
  reason: string;
}

export interface InterruptedDecision {
  label: string;
  reason: string;
}

export interface WalRemoval {
  timeline: number;
  /** Segment names (24 hex digits) of the oldest and newest file removed. */
  first: string;
  last: string;
  /** Files removed: segments and their .partial and .backup files. */
  count: number;
  bytes: number;
  keys: string[];
  /** WAL from this segment on stays; null when the whole timeline (except .history files) goes. */
  keepFrom: string | null;
}

export interface RetentionPlan {
  /** False when no retention key is set: every backup and all WAL are kept. */
  configured: boolean;
  /** Oldest first. */
  retained: BackupDecision[];
  /** Oldest first. */
  expired: BackupDecision[];
  /** Interrupted backups to remove, oldest first. */
  interrupted: InterruptedDecision[];
  /** Interrupted backups left alone: one that may still be running. */
  inProgress: InterruptedDecision[];
  /** Ascending timeline. */
  wal: WalRemoval[];
  notes: string[];
}

/** An interrupted backup younger than this (by its newest object) may still be running. */
export const IN_PROGRESS_GRACE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The time in a label's last stamp (a full's start, or an incremental's/differential's own start). */
export function labelTime(label: string): Date {
  const m = /(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})[FDI]$/.exec(label);
  if (!m) return new Date(0);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/** The full backup a chain starts from: the label's part before '_'. */
export function chainFull(label: string): string {
  return label.split('_')[0]!;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const plural = (n: number, one: string) => `${n} ${n === 1 ? one : `${one}s`}`;
/** "the newest full backup", "one of the 3 newest full backups" */
const newest = (n: number, what: string) => (n === 1 ? `the newest ${what}` : `one of the ${n} newest ${what}s`);

/**
 * Decides what `strata expire` removes. Pure: the same input gives the same plan. Semantics in
 * docs/decisions.md ("Retention"); the invariant is that every retained backup stays restorable
 * and every WAL file needed for point-in-time recovery from its start onwards stays.
 */
export function planRetention(input: RetentionInput): RetentionPlan {
  const { policy, now } = input;
  const configured = policy.full !== undefined || policy.diff !== undefined || policy.fullDays !== undefined;
  const notes: string[] = [];
  // Oldest first (an incremental's label sorts with its full's, so by start time).
  const backups = [...input.backups].sort((a, b) => compare(a.startTime, b.startTime) || compare(a.label, b.label));
  const byLabel = new Map(backups.map((b) => [b.label, b]));
  const kept = new Map<string, string>();
  const expired = new Map<string, string>();

  if (!configured) {
    notes.push('no retention configured (retention.full, retention.diff, retention.fullDays): keeping every backup and all WAL');
    for (const b of backups) kept.set(b.label, 'no retention configured');
  } else {
    // 1. Full backups: the union of what retention.full and retention.fullDays keep.
    const fulls = backups.filter((b) => b.type === 'full');
    if (policy.full === undefined && policy.fullDays === undefined) {
      for (const f of fulls) kept.set(f.label, 'retention.full and retention.fullDays are not set: every full backup is kept');
    }
    if (policy.full !== undefined) {
      for (const f of fulls.slice(-policy.full)) {
        if (!kept.has(f.label)) kept.set(f.label, `${newest(policy.full, 'full backup')} (retention.full)`);
      }
    }
    if (policy.fullDays !== undefined) {
      const cutoff = now.getTime() - policy.fullDays * DAY_MS;
      const days = plural(policy.fullDays, 'day');
      const old = fulls.filter((f) => Date.parse(f.stopTime) <= cutoff);
      for (const f of fulls) {
        if (Date.parse(f.stopTime) > cutoff && !kept.has(f.label)) kept.set(f.label, `newer than ${days} (retention.fullDays)`);
      }
      // Restoring to the start of the window needs a backup that ended before it.
      const anchor = old.at(-1);
      if (anchor && !kept.has(anchor.label)) {
        kept.set(
          anchor.label,
          `the newest full backup older than ${days}: the start of the window is restorable from it (retention.fullDays)`,
        );
      }
    }
    for (const f of fulls) {
      if (kept.has(f.label)) continue;
      const why: string[] = [];
      if (policy.full !== undefined) why.push(`not ${newest(policy.full, 'full backup')} (retention.full)`);
      if (policy.fullDays !== undefined)
        why.push(`older than ${plural(policy.fullDays, 'day')} with a newer full backup also older (retention.fullDays)`);
      expired.set(f.label, why.join('; '));
    }

    // 2. Incrementals and differentials follow their chain's full.
    for (const b of backups) {
      if (b.type === 'full') continue;
      const full = chainFull(b.label);
      if (kept.has(full)) kept.set(b.label, `its full backup ${full} is retained`);
      else expired.set(b.label, byLabel.has(full) ? `its full backup ${full} is expired` : `its full backup ${full} does not exist`);
    }

    // 3. retention.diff: only the newest N differentials, with the incrementals built on the others.
    if (policy.diff !== undefined) {
      const diffs = backups.filter((b) => b.type === 'diff');
      const dropped = new Set<string>();
      for (const d of diffs.slice(0, Math.max(0, diffs.length - policy.diff))) {
        if (!kept.delete(d.label)) continue;
        expired.set(d.label, `not ${newest(policy.diff, 'differential backup')} (retention.diff)`);
        dropped.add(d.label);
      }
      // Oldest first, so an incremental on a dropped incremental goes too.
      for (const b of backups) {
        const gone = kept.has(b.label) && b.type === 'incr' ? b.references.find((r) => dropped.has(r)) : undefined;
        if (gone === undefined) continue;
        kept.delete(b.label);
        expired.set(b.label, `depends on expired backup ${gone}`);
        dropped.add(b.label);
      }
    }

    // 4. Never remove what a retained backup points into.
    for (let changed = true; changed;) {
      changed = false;
      for (const b of backups) {
        if (!kept.has(b.label)) continue;
        for (const ref of new Set([...b.references, ...(b.parent ? [b.parent] : [])])) {
          if (expired.delete(ref)) {
            kept.set(ref, `referenced by retained backup ${b.label}`);
            changed = true;
          }
        }
      }
    }
  }

  const decision = (b: BackupFacts, reason: string): BackupDecision => ({ label: b.label, type: b.type, reason });
  const retained = backups.filter((b) => kept.has(b.label)).map((b) => decision(b, kept.get(b.label)!));
  const expiredList = backups.filter((b) => expired.has(b.label)).map((b) => decision(b, expired.get(b.label)!));

  const { interrupted, inProgress } = planInterrupted(input, backups, notes);
  const retainedFacts = backups.filter((b) => kept.has(b.label));
  let wal: WalRemoval[] = [];
  if (configured && retainedFacts.length === 0) notes.push('no backup is retained: keeping all WAL');
  if (configured && retainedFacts.length > 0) wal = planWal(input.wal, retainedFacts);
  return { configured, retained, expired: expiredList, interrupted, inProgress, wal, notes };
}

function planInterrupted(
  input: RetentionInput,
  backups: BackupFacts[],
  notes: string[],
): { interrupted: InterruptedDecision[]; inProgress: InterruptedDecision[] } {
  const interrupted: InterruptedDecision[] = [];
  const inProgress: InterruptedDecision[] = [];
  const labels = input.incomplete.filter((i) => {
    if (LABEL_RE.test(i.label)) return true;
    notes.push(`left ${i.label} alone under backup/: not a backup label`);
    return false;
  });
  labels.sort((a, b) => labelTime(a.label).getTime() - labelTime(b.label).getTime() || compare(a.label, b.label));
  const newestCommitted = Math.max(-Infinity, ...backups.map((b) => labelTime(b.label).getTime()));
  const newest = labels.at(-1);
  for (const i of labels) {
    const started = labelTime(i.label).getTime();
    const active = Math.max(started, i.lastModified?.getTime() ?? -Infinity);
    let reason: string;
    if (started < newestCommitted) reason = 'interrupted: a newer backup was taken since';
    else if (i !== newest) reason = 'interrupted: a newer backup was started since';
    else if (input.now.getTime() - active >= IN_PROGRESS_GRACE_MS) reason = 'interrupted: nothing written to it for over an hour';
    else {
      inProgress.push({ label: i.label, reason: 'newer than every backup and written to less than an hour ago: it may still be running' });
      continue;
    }
    interrupted.push({ label: i.label, reason });
  }
  return { interrupted, inProgress };
}

/**
 * WAL needed for point-in-time recovery from the oldest retained backup onwards: on its timeline
 * from its start segment, and every newer timeline whole (recovery from that backup follows the
 * timeline switches into them). Older timelines go, except their tiny .history files.
 */
function planWal(objects: ObjectInfo[], retained: BackupFacts[]): WalRemoval[] {
  const oldestTimeline = Math.min(...retained.map((b) => b.timeline));
  const keepFrom = retained
    .filter((b) => b.timeline === oldestTimeline)
    .map((b) => b.startWal.slice(0, 24))
    .sort()[0]!;
  const byTimeline = new Map<number, WalRemoval>();
  for (const o of objects) {
    const parsed = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1));
    if (!parsed || !isWalFileName(parsed.walName) || HISTORY_RE.test(parsed.walName)) continue;
    const segment = parsed.walName.slice(0, 24);
    const timeline = parseInt(segment.slice(0, 8), 16);
    if (timeline > oldestTimeline || (timeline === oldestTimeline && segment >= keepFrom)) continue;
    let r = byTimeline.get(timeline);
    if (!r) {
      r = {
        timeline,
        first: segment,
        last: segment,
        count: 0,
        bytes: 0,
        keys: [],
        keepFrom: timeline === oldestTimeline ? keepFrom : null,
      };
      byTimeline.set(timeline, r);
    }
    if (segment < r.first) r.first = segment;
    if (segment > r.last) r.last = segment;
    r.count++;
    r.bytes += o.size;
    r.keys.push(o.key);
  }
  return [...byTimeline.values()].sort((a, b) => a.timeline - b.timeline);
}
