import type { Readable } from 'node:stream';

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Reads the first `n` bytes of a stream (fewer when it ends first) and leaves the rest in it,
 * so the remainder can be piped on.
 */
export async function readPrefix(stream: Readable, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  while (length < n) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      parts.push(chunk);
      length += chunk.length;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        stream.off('readable', done);
        stream.off('end', done);
        stream.off('close', done);
        stream.off('error', fail);
        resolve();
      };
      const fail = (err: Error) => {
        done();
        reject(err);
      };
      stream.on('readable', done);
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', fail);
    });
    if (stream.errored) throw stream.errored;
  }
  const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  if (all.length > n) stream.unshift(all.subarray(n));
  return all.subarray(0, n);
}
