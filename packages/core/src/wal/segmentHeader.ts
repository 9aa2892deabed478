/**
 * Reads the long page header at the start of a WAL segment (XLogLongPageHeaderData) so a segment
 * from another cluster is never archived into this cluster's repository.
 */
const XLP_LONG_HEADER = 0x0002;

export interface SegmentHeader {
  magic: number;
  timeline: number;
  systemIdentifier: string;
  segmentSize: number;
  blockSize: number;
}

export function readSegmentHeader(data: Buffer): SegmentHeader | undefined {
  if (data.length < 40) return undefined;
  const info = data.readUInt16LE(2);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  return {
    magic: data.readUInt16LE(0),
    timeline: data.readUInt32LE(4),
    systemIdentifier: data.readBigUInt64LE(24).toString(),
    segmentSize: data.readUInt32LE(32),
    blockSize: data.readUInt32LE(36),
  };
}
