import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The encrypted object format (docs/format.md, "Encrypted objects"):
 *
 *   header (64 bytes, clear) | chunk 0 | chunk 1 | … | final chunk
 *
 * Each chunk is up to CHUNK_SIZE plaintext bytes sealed with AES-256-GCM under a key derived per
 * object (HKDF-SHA256 of the data key with the object's random salt), followed by its 16-byte tag.
 * The nonce is the chunk index; the additional data binds the header, the object key, the chunk
 * index and whether the chunk is the last one, so flipped, cut, reordered or swapped bytes fail.
 */
export const MAGIC = Buffer.from('STRENC', 'latin1');
export const FORMAT_VERSION = 1;
/** AES-256-GCM chunks with an HKDF-SHA256 per-object key. */
export const ALGORITHM_AES256GCM = 1;
export const HEADER_SIZE = 64;
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const DATA_KEY_ID_SIZE = 16;
export const SALT_SIZE = 32;
const STORED_CHUNK = CHUNK_SIZE + TAG_SIZE;
const HKDF_INFO = Buffer.from('strata encrypted object v1', 'latin1');

export interface ObjectHeader {
  /** Hex id of the data key; its wrapped copies are keyring objects. */
  dataKeyId: string;
  salt: Buffer;
  chunkSize: number;
  /** The 64 header bytes as stored (bound into every chunk's additional data). */
  raw: Buffer;
}

/** Why a header was refused; the caller turns it into an Integrity error naming the object. */
export class HeaderError extends Error {}

export function newHeader(dataKeyId: Buffer): ObjectHeader {
  const raw = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(raw, 0);
  raw[6] = FORMAT_VERSION;
  raw[7] = ALGORITHM_AES256GCM;
  raw.writeUInt32BE(CHUNK_SIZE, 8);
  dataKeyId.copy(raw, 12);
  const salt = randomBytes(SALT_SIZE);
  salt.copy(raw, 12 + DATA_KEY_ID_SIZE);
  return { dataKeyId: dataKeyId.toString('hex'), salt, chunkSize: CHUNK_SIZE, raw };
}

export function parseHeader(raw: Buffer): ObjectHeader {
  if (raw.length < HEADER_SIZE) throw new HeaderError(`shorter than the ${HEADER_SIZE}-byte encryption header`);
  const head = Buffer.from(raw.subarray(0, HEADER_SIZE));
  if (!head.subarray(0, 6).equals(MAGIC)) throw new HeaderError('not an encrypted Strata object (bad magic)');
  if (head[6] !== FORMAT_VERSION)
    throw new HeaderError(`unknown encryption format version ${head[6]} (damaged, or written by a newer Strata)`);
  if (head[7] !== ALGORITHM_AES256GCM) throw new HeaderError(`unknown cipher ${head[7]}`);
  const chunkSize = head.readUInt32BE(8);
  if (chunkSize !== CHUNK_SIZE) throw new HeaderError(`unsupported chunk size ${chunkSize}`);
  if (head.readUInt32BE(60) !== 0) throw new HeaderError('reserved header bytes are not zero');
  return {
    dataKeyId: head.subarray(12, 12 + DATA_KEY_ID_SIZE).toString('hex'),
    salt: Buffer.from(head.subarray(28, 28 + SALT_SIZE)),
    chunkSize,
    raw: head,
  };
}

/** Stored size of a plaintext of `plain` bytes: header plus one tag per chunk (an empty object has one empty chunk). */
export function storedSize(plain: number): number {
  return HEADER_SIZE + plain + TAG_SIZE * Math.max(1, Math.ceil(plain / CHUNK_SIZE));
}

/** Plaintext size of a stored object, or undefined when no plaintext size gives this stored size. */
export function plainSize(stored: number): number | undefined {
  const body = stored - HEADER_SIZE;
  if (body < TAG_SIZE) return undefined;
  const chunks = Math.ceil(body / STORED_CHUNK);
  const plain = body - chunks * TAG_SIZE;
  return plain >= 0 && storedSize(plain) === stored ? plain : undefined;
}

/** Stored byte offset of chunk `index`. */
export function chunkOffset(index: number): number {
  return HEADER_SIZE + index * STORED_CHUNK;
}

/** The key and additional data of one object; seals and opens its chunks. */
export class ObjectCipher {
  private readonly key: Buffer;
  private readonly aadBase: Buffer;

  constructor(dataKey: Buffer, header: ObjectHeader, objectKey: string) {
    this.key = Buffer.from(hkdfSync('sha256', dataKey, header.salt, HKDF_INFO, 32));
    this.aadBase = createHash('sha256').update(header.raw).update(objectKey, 'utf8').digest();
  }

  private params(index: number, final: boolean): { nonce: Buffer; aad: Buffer } {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(BigInt(index), 4);
    const aad = Buffer.alloc(this.aadBase.length + 9);
    this.aadBase.copy(aad, 0);
    aad.writeBigUInt64BE(BigInt(index), this.aadBase.length);
    aad[this.aadBase.length + 8] = final ? 1 : 0;
    return { nonce, aad };
  }

  /** Writes the sealed chunk (ciphertext then tag) into `out` at `at`; returns the bytes written. */
  sealInto(index: number, final: boolean, plain: Buffer, out: Buffer, at: number): number {
    const { nonce, aad } = this.params(index, final);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    c.setAAD(aad);
    const body = c.update(plain);
    const rest = c.final();
    body.copy(out, at);
    rest.copy(out, at + body.length);
    c.getAuthTag().copy(out, at + body.length + rest.length);
    return plain.length + TAG_SIZE;
  }

  seal(index: number, final: boolean, plain: Buffer): Buffer {
    const out = Buffer.allocUnsafe(plain.length + TAG_SIZE);
    this.sealInto(index, final, plain, out, 0);
    return out;
  }

  /** The plaintext, or undefined when the chunk does not authenticate as (index, final). */
  open(index: number, final: boolean, sealed: Buffer): Buffer | undefined {
    if (sealed.length < TAG_SIZE) return undefined;
    const { nonce, aad } = this.params(index, final);
    const d = createDecipheriv('aes-256-gcm', this.key, nonce);
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    try {
      const body = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
      const rest = d.final();
      return rest.length ? Buffer.concat([body, rest]) : body;
    } catch {
      return undefined;
    }
  }
}

/** Encrypts a whole buffer into a new buffer (header included). */
export function encryptBuffer(cipher: ObjectCipher, header: ObjectHeader, plain: Buffer): Buffer {
  const out = Buffer.allocUnsafe(storedSize(plain.length));
  header.raw.copy(out, 0);
  let at = HEADER_SIZE;
  const chunks = Math.max(1, Math.ceil(plain.length / CHUNK_SIZE));
  for (let i = 0; i < chunks; i++) {
    at += cipher.sealInto(i, i === chunks - 1, plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE), out, at);
  }
  return out;
}

/** Why a body was refused; the caller turns it into an Integrity error naming the object. */
export class ChunkError extends Error {}

/** Encrypts a stream: the header, then each chunk once it is known whether more follows. */
export class EncryptStream extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;

  constructor(
    private readonly cipher: ObjectCipher,
    header: ObjectHeader,
  ) {
    super();
    this.push(header.raw);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let data = chunk;
    while (data.length > 0) {
      // A full chunk is sealed as non-final only when more bytes follow it.
      if (this.pendingBytes === CHUNK_SIZE) this.emit_(false);
      const take = Math.min(CHUNK_SIZE - this.pendingBytes, data.length);
      this.pending.push(data.subarray(0, take));
      this.pendingBytes += take;
      data = data.subarray(take);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.emit_(true);
    done();
  }

  private emit_(final: boolean): void {
    const plain = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.push(this.cipher.seal(this.index++, final, plain));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/**
 * Decrypts a stream of sealed chunks starting at chunk `firstChunk`, dropping `skip` plaintext
 * bytes first. The stream must end with the final chunk: a cut-off object fails.
 */
export class DecryptStream extends Transform {
  private buf: Buffer[] = [];
  private bufBytes = 0;
  private index: number;
  private sawFinal = false;

  constructor(
    private readonly cipher: ObjectCipher,
    firstChunk: number,
    private skip: number,
    /** Turns a reason into the error the reader sees (an Integrity error naming the object). */
    private readonly fail: (why: string) => Error = (why) => new ChunkError(why),
  ) {
    super();
    this.index = firstChunk;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.buf.push(chunk);
    this.bufBytes += chunk.length;
    try {
      // Keep at least one byte beyond a full chunk: only then is it known not to be the last.
      while (this.bufBytes > STORED_CHUNK) {
        const all = this.takeBytes(STORED_CHUNK);
        this.open(all, false);
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.bufBytes === 0 && this.index > 0 && !this.sawFinal) throw this.fail(`cut short after chunk ${this.index - 1}`);
      if (this.bufBytes > 0) this.open(this.takeBytes(this.bufBytes), true);
      else if (this.index === 0) throw this.fail('has no chunks');
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private takeBytes(n: number): Buffer {
    const all = this.buf.length === 1 ? this.buf[0]! : Buffer.concat(this.buf, this.bufBytes);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buf = rest.length ? [rest] : [];
    this.bufBytes = rest.length;
    return out;
  }

  private open(sealed: Buffer, final: boolean): void {
    const plain = this.cipher.open(this.index, final, sealed);
    if (!plain) {
      throw this.fail(
        final && sealed.length === STORED_CHUNK && this.cipher.open(this.index, false, sealed)
          ? `cut short after chunk ${this.index}`
          : `chunk ${this.index} fails authentication`,
      );
    }
    if (final) this.sawFinal = true;
    this.index++;
    if (this.skip >= plain.length) {
      this.skip -= plain.length;
      return;
    }
    this.push(this.skip ? plain.subarray(this.skip) : plain);
    this.skip = 0;
  }
}

/**
 * Opens the chunks of a bounded ranged read. `sealed` holds chunks firstChunk… as stored (the
 * last may be short when the object ends). A full last chunk may be final or not: it is opened
 * as whichever authenticates, and a chunk cut short must authenticate as final.
 */
export function openRange(
  cipher: ObjectCipher,
  firstChunk: number,
  sealed: Buffer,
  wantedChunks: number,
): { plain: Buffer; reachedEnd: boolean } {
  const parts: Buffer[] = [];
  let reachedEnd = false;
  const count = Math.ceil(sealed.length / STORED_CHUNK);
  for (let k = 0; k < count; k++) {
    const index = firstChunk + k;
    const piece = sealed.subarray(k * STORED_CHUNK, (k + 1) * STORED_CHUNK);
    const last = k === count - 1;
    let plain: Buffer | undefined;
    if (!last) plain = cipher.open(index, false, piece);
    else if (piece.length < STORED_CHUNK || count < wantedChunks) {
      plain = cipher.open(index, true, piece);
      reachedEnd = true;
    } else {
      plain = cipher.open(index, false, piece);
      if (!plain) {
        plain = cipher.open(index, true, piece);
        reachedEnd = plain !== undefined;
      }
    }
    if (!plain) throw new ChunkError(`chunk ${index} fails authentication`);
    parts.push(plain);
  }
  return { plain: Buffer.concat(parts), reachedEnd };
}
