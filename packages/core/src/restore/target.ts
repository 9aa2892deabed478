import { StrataError } from '../errors/index.js';
import { parseLsn } from '../postgres/walNames.js';

export type RecoveryTarget =
  | { kind: 'time'; time: Date; text: string }
  | { kind: 'xid'; xid: string }
  | { kind: 'lsn'; lsn: bigint; text: string }
  | { kind: 'name'; name: string }
  | { kind: 'immediate' };

export interface TargetOptions {
  time?: string;
  xid?: string;
  lsn?: string;
  name?: string;
  immediate?: boolean;
}

/**
 * A time target must carry its UTC offset: PostgreSQL would read a bare time in the restored
 * server's time zone, and a wrong guess restores to the wrong moment.
 */
const TIME_RE = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i;

export function parseTargetTime(text: string): Date {
  const m = TIME_RE.exec(text.trim());
  if (!m) {
    throw new StrataError('InvalidArgument', `--target-time "${text}" is not a timestamp with a UTC offset`, {
      hint: "write it as PostgreSQL prints timestamptz, with the offset, e.g. '2026-11-22 14:03:00+00'",
    });
  }
  let zone = m[3]!.toUpperCase();
  if (zone !== 'Z') zone = zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const [sec, frac = ''] = m[2]!.split('.');
  const iso = `${m[1]}T${sec}${frac ? `.${frac.padEnd(3, '0').slice(0, 3)}` : ''}${zone}`;
  const d = new Date(iso);
  // Date rolls impossible days over (Feb 30 -> Mar 2); PostgreSQL refuses them, and so do we.
  const [year, month, day] = m[1]!.split('-').map(Number) as [number, number, number];
  const calendarDay = new Date(Date.UTC(year, month - 1, day));
  if (Number.isNaN(d.getTime()) || calendarDay.getUTCMonth() !== month - 1 || calendarDay.getUTCDate() !== day) {
    throw new StrataError('InvalidArgument', `--target-time "${text}" is not a valid time`);
  }
  return d;
}

export function parseTarget(opts: TargetOptions): RecoveryTarget | undefined {
  const given = [opts.time, opts.xid, opts.lsn, opts.name, opts.immediate ? 'x' : undefined].filter((v) => v !== undefined);
  if (given.length > 1) {
    throw new StrataError(
      'InvalidArgument',
      'give at most one of --target-time, --target-xid, --target-lsn, --target-name, --target-immediate',
    );
  }
  if (opts.time !== undefined) return { kind: 'time', time: parseTargetTime(opts.time), text: opts.time.trim() };
  if (opts.xid !== undefined) {
    if (!/^\d+$/.test(opts.xid))
      throw new StrataError('InvalidArgument', `--target-xid "${opts.xid}" is not a transaction id`, {
        hint: 'use the number txid_current() returned',
      });
    return { kind: 'xid', xid: opts.xid };
  }
  if (opts.lsn !== undefined) return { kind: 'lsn', lsn: parseLsn(opts.lsn), text: opts.lsn.trim() };
  if (opts.name !== undefined) {
    if (opts.name.length === 0 || opts.name.length > 63)
      throw new StrataError('InvalidArgument', '--target-name must be 1 to 63 characters');
    return { kind: 'name', name: opts.name };
  }
  if (opts.immediate) return { kind: 'immediate' };
  return undefined;
}
