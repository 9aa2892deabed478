import { StrataError } from '../errors/index.js';

/** WAL file naming, as PostgreSQL's xlog_internal.h defines it. */
export const SEGMENT_RE = /^[0-9A-F]{24}$/;
export const HISTORY_RE = /^[0-9A-F]{8}\.history$/;
export const BACKUP_FILE_RE = /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/;
export const PARTIAL_RE = /^[0-9A-F]{24}\.partial$/;

export function isWalFileName(name: string): boolean {
  return SEGMENT_RE.test(name) || HISTORY_RE.test(name) || BACKUP_FILE_RE.test(name) || PARTIAL_RE.test(name);
}

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) {
    throw new StrataError('InvalidArgument', `"${text}" is not an LSN`, { hint: 'write an LSN as PostgreSQL prints it, e.g. 0/16B3748' });
  }
  return (BigInt(`0x${m[1]!}`) << 32n) | BigInt(`0x${m[2]!}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function segmentsPerLogId(segSize: number): bigint {
  return 0x100000000n / BigInt(segSize);
}

/** The segment holding `lsn` (XLByteToSeg). */
export function segmentNameForLsn(timeline: number, lsn: bigint, segSize: number): string {
  return segmentName(timeline, lsn / BigInt(segSize), segSize);
}

export function segmentName(timeline: number, segNo: bigint, segSize: number): string {
  const per = segmentsPerLogId(segSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segNo / per)}${hex(segNo % per)}`;
}

export function parseSegmentName(name: string, segSize: number): { timeline: number; segNo: bigint } {
  if (!SEGMENT_RE.test(name)) throw new StrataError('InvalidArgument', `"${name}" is not a WAL segment name`);
  const timeline = parseInt(name.slice(0, 8), 16);
  const log = BigInt(`0x${name.slice(8, 16)}`);
  const seg = BigInt(`0x${name.slice(16, 24)}`);
  return { timeline, segNo: log * segmentsPerLogId(segSize) + seg };
}

/** Segment names from `first` to `last` inclusive, on `first`'s timeline. */
export function segmentRange(first: string, last: string, segSize: number): string[] {
  const a = parseSegmentName(first, segSize);
  const b = parseSegmentName(last, segSize);
  const out: string[] = [];
  for (let s = a.segNo; s <= b.segNo; s++) out.push(segmentName(a.timeline, s, segSize));
  return out;
}
