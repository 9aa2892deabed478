import type { Readable } from 'node:stream';
import { StrataError, isStrataError, toStrataError, type ErrorCode } from '../errors/index.js';
import type { Compressor, GetOptions, ObjectInfo, StorageCapabilities } from '../plugins/contract.js';
import { noopLogger, type Logger } from '../logger.js';
import { sealObject, type RepoPutOptions, type Repository } from './Repository.js';
import type { Repo } from './Repo.js';
import type { MissQueue } from './MissQueue.js';

export interface ReplicationOptions {
  /** Copies that must hold an object before a write counts as done (1..copies). */
  minCopies: number;
  /** Where the copies a write skipped are recorded (without one, nothing is recorded). */
  queue?: MissQueue;
  logger?: Logger;
  /**
   * A copy another process found down is skipped for this long (ms, default 30 s), then probed
   * again; it is probed at once when the other copies are fewer than minCopies.
   */
  probeAfterMs?: number;
}

/** A read that one copy could not serve and another did. */
export interface Fallback {
  key: string;
  /** The copy that failed. */
  from: string;
  /** The copy that served the read. */
  to: string;
  reason: string;
}

/** Errors that say "this copy cannot serve or take this object": another copy may. */
const COPY_FAULTS: ReadonlySet<ErrorCode> = new Set([
  'NotFound',
  'Integrity',
  'Unavailable',
  'RateLimited',
  'Timeout',
  'PermissionDenied',
  'Internal',
]);
/** Faults that make a copy unreachable for the rest of this process (no point retrying each object). */
const OUTAGES: ReadonlySet<ErrorCode> = new Set(['Unavailable', 'RateLimited', 'Timeout', 'PermissionDenied']);

/**
 * Every configured repository as one: each write goes to all copies in parallel (the data was read
 * and compressed once), and succeeds when at least `minCopies` hold it; a copy that failed is
 * recorded in the miss queue for `strata replicate` and skipped for the rest of the process.
 * Reads try the copies in order and fall back to the next on absence, outage or damage; listings
 * are the union of what the reachable copies hold.
 */
export class ReplicatedRepository implements Repo {
  readonly name: string;
  /** Copies that failed in this process, with the error that took them out. */
  private readonly down = new Map<string, StrataError>();
  /** Copies a recent process found down (the queue's marks): skipped unless needed. */
  private readonly presumedDown = new Map<string, StrataError>();
  private marks: Promise<void> | undefined;
  /** Every fallback so far, for the command's report. */
  readonly fallbacks: Fallback[] = [];
  private readonly log: Logger;

  constructor(
    readonly copies: readonly Repository[],
    private readonly opts: ReplicationOptions,
  ) {
    if (copies.length === 0) throw new StrataError('ConfigInvalid', 'no repositories to replicate to');
    if (!Number.isInteger(opts.minCopies) || opts.minCopies < 1 || opts.minCopies > copies.length) {
      throw new StrataError('ConfigInvalid', `minCopies is ${opts.minCopies}, but ${copies.length} repositories are configured`, {
        hint: `set minCopies between 1 and ${copies.length}, or "all"`,
      });
    }
    this.name = copies.map((c) => c.name).join('+');
    this.log = opts.logger ?? noopLogger;
  }

  get minCopies(): number {
    return this.opts.minCopies;
  }

  describe(): string {
    return `repositories ${this.copies.map((c) => `"${c.name}"`).join(', ')}`;
  }

  get capabilities(): StorageCapabilities {
    const caps = this.copies.map((c) => c.capabilities);
    return {
      readWithRange: caps.every((c) => c.readWithRange),
      writeIfNotExists: caps.every((c) => c.writeIfNotExists),
      tags: caps.every((c) => c.tags),
      listMaxKeys: Math.min(...caps.map((c) => c.listMaxKeys)),
    };
  }

  compressor(name: string): Compressor {
    return this.copies[0]!.compressor(name);
  }

  compressorByExtension(extension: string): Compressor {
    return this.copies[0]!.compressorByExtension(extension);
  }

  /** Copies neither failed in this process nor recently marked down by another. */
  healthy(): Repository[] {
    return this.copies.filter((c) => !this.down.has(c.name) && !this.presumedDown.has(c.name));
  }

  /** Copies that failed in this process (or were skipped as recently down) and why. */
  outages(): { repo: string; error: StrataError }[] {
    return [...this.down, ...this.presumedDown].map(([repo, error]) => ({ repo, error }));
  }

  /** Reads, once, the down marks other processes left. */
  private loadMarks(): Promise<void> {
    this.marks ??= (async () => {
      const queue = this.opts.queue;
      if (!queue) return;
      const window = this.opts.probeAfterMs ?? 30_000;
      for (const c of this.copies) {
        const mark = await queue.downMark(c.name).catch(() => undefined);
        if (!mark || Date.now() - mark.at >= window) continue;
        const ago = Math.round((Date.now() - mark.at) / 1000);
        const message = `repository "${c.name}" was found down ${ago} s ago (${mark.reason}); it is probed again after ${window / 1000} s`;
        this.presumedDown.set(c.name, new StrataError('Unavailable', message, { context: { repo: c.name } }));
      }
    })();
    return this.marks;
  }

  /** Takes a copy out for the rest of this process, and tells the next processes for a while. */
  private async markDown(copy: Repository, error: StrataError): Promise<void> {
    this.presumedDown.delete(copy.name);
    if (!this.down.has(copy.name)) {
      this.log.warn({ repo: copy.name, err: error.message }, 'repository copy failed; continuing with the others');
      await this.opts.queue?.markDown(copy.name, error.message).catch(() => undefined);
    }
    this.down.set(copy.name, error);
  }

  private reasonOf(copy: Repository): StrataError {
    return (this.down.get(copy.name) ?? this.presumedDown.get(copy.name))!;
  }

  async put(key: string, body: Buffer | Readable, options: RepoPutOptions = {}): Promise<void> {
    if (!Buffer.isBuffer(body)) {
      if (this.copies.length === 1) return this.copies[0]!.put(key, body, options);
      // Strata's own writes are buffers (packs, metadata, WAL); a stream could be read only once.
      throw new StrataError('Internal', `put "${key}": a streamed body cannot be written to several repositories`);
    }
    await this.fanOut('put', key, (c) => c.put(key, body, options));
  }

  async putSealed(key: string, kind: string, value: unknown, compression: string, options: RepoPutOptions = {}): Promise<number> {
    const body = await sealObject(kind, value, compression, this.compressor(compression));
    await this.fanOut('put', key, (c) => c.put(key, body, options));
    return body.length;
  }

  async delete(keys: string[]): Promise<void> {
    if (keys.length) await this.fanOut('delete', keys[0]!, (c) => c.delete(keys), false);
  }

  /**
   * Runs one write on every healthy copy. AlreadyExists from any copy is the caller's to judge
   * (a conditional create), so it is rethrown once every copy has answered.
   */
  private async fanOut(operation: string, key: string, write: (copy: Repository) => Promise<void>, record = true): Promise<void> {
    await this.loadMarks();
    const targets = this.healthy();
    // Too few without the copies presumed down: probe them rather than fail for certain.
    if (targets.length < this.opts.minCopies) {
      targets.push(...this.copies.filter((c) => this.presumedDown.has(c.name) && !this.down.has(c.name)));
    }
    const results = await Promise.allSettled(targets.map((c) => write(c)));
    // Copies that hold the object afterwards: written now, or already there (AlreadyExists).
    let stored = 0;
    let exists: StrataError | undefined;
    for (const [i, r] of results.entries()) {
      const copy = targets[i]!;
      const error = r.status === 'rejected' ? toStrataError(r.reason, 'Unavailable', operation) : undefined;
      if (!error || error.code === 'AlreadyExists') {
        stored++;
        if (error) exists ??= error;
        if (this.presumedDown.delete(copy.name)) await this.opts.queue?.markUp(copy.name).catch(() => undefined);
      } else await this.markDown(copy, error);
    }
    const missedBy = this.copies.filter((c) => this.down.has(c.name) || this.presumedDown.has(c.name));
    if (stored < this.opts.minCopies) {
      const reasons = missedBy.map((c) => `${c.name}: ${this.reasonOf(c).message}`).join('; ');
      const first = this.reasonOf(missedBy[0]!);
      throw new StrataError(
        first.code,
        `${operation} "${key}" reached ${stored} of ${this.copies.length} repositories, fewer than minCopies ${this.opts.minCopies}: ${reasons}`,
        {
          cause: first,
          operation,
          context: { key },
          retryable: first.retryable,
          hint: 'bring the failed repository back (or lower minCopies); what the others hold is replicated by "strata replicate"',
        },
      );
    }
    if (record && this.opts.queue) {
      const at = new Date().toISOString();
      for (const c of missedBy) await this.opts.queue.record({ repo: c.name, key, at, reason: this.reasonOf(c).message });
    }
    if (exists) throw exists;
  }

  async readFrom<T>(key: string, read: (copy: Repository) => Promise<T>): Promise<T> {
    // Copies that failed earlier (here or in another process) are tried last, not skipped: they may be back.
    await this.loadMarks();
    const healthy = this.healthy();
    const order = [...healthy, ...this.copies.filter((c) => !healthy.includes(c))];
    const errors: { copy: Repository; error: StrataError }[] = [];
    for (const copy of order) {
      try {
        const value = await read(copy);
        for (const e of errors) {
          const fallback = { key, from: e.copy.name, to: copy.name, reason: e.error.message };
          this.fallbacks.push(fallback);
          this.log.warn(fallback, `read "${key}" from repository "${copy.name}" instead of "${e.copy.name}"`);
        }
        return value;
      } catch (err) {
        if (!isStrataError(err) || !COPY_FAULTS.has(err.code)) throw err;
        errors.push({ copy, error: err });
        if (OUTAGES.has(err.code)) await this.markDown(copy, err);
      }
    }
    const primary = errors.find((e) => e.error.code !== 'NotFound') ?? errors[0]!;
    if (errors.length === 1) throw primary.error;
    return Promise.reject(
      new StrataError(
        primary.error.code,
        `no repository could serve "${key}": ${errors.map((e) => `${e.copy.name}: ${e.error.message}`).join('; ')}`,
        {
          cause: primary.error,
          context: { ...primary.error.context, key },
          hint: primary.error.hint,
          retryable: primary.error.retryable,
        },
      ),
    );
  }

  get(key: string, options: GetOptions = {}): Promise<Readable> {
    return this.readFrom(key, (c) => c.get(key, options));
  }

  getBuffer(key: string, options: GetOptions = {}): Promise<Buffer> {
    return this.readFrom(key, (c) => c.getBuffer(key, options));
  }

  readSealed<T>(key: string, kind: string): Promise<T> {
    return this.readFrom(key, (c) => c.readSealed<T>(key, kind));
  }

  openSealed<T>(raw: Buffer, key: string, kind: string): Promise<T> {
    return this.copies[0]!.openSealed<T>(raw, key, kind);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      return await this.readFrom(key, async (c) => {
        const info = await c.head(key);
        if (!info) throw new StrataError('NotFound', `"${key}" is not in ${c.describe()}`);
        return info;
      });
    } catch (err) {
      if (isStrataError(err) && err.code === 'NotFound') return undefined;
      throw err;
    }
  }

  /** The union of what the reachable copies hold, in key order; fails only when no copy answers. */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* await this.listAll(prefix);
  }

  async listAll(prefix: string): Promise<ObjectInfo[]> {
    // A copy that failed earlier is listed only when no other copy is left.
    await this.loadMarks();
    const healthy = this.healthy();
    const from = healthy.length ? healthy : [...this.copies];
    const listed = await Promise.allSettled(from.map((c) => c.listAll(prefix)));
    const merged = new Map<string, ObjectInfo>();
    let answered = 0;
    let firstError: unknown;
    for (const [i, r] of listed.entries()) {
      const copy = from[i]!;
      if (r.status === 'rejected') {
        firstError ??= r.reason;
        const error = toStrataError(r.reason, 'Unavailable', 'list');
        if (OUTAGES.has(error.code)) await this.markDown(copy, error);
        else this.log.warn({ repo: copy.name, prefix, err: error.message }, 'cannot list a repository copy; using the others');
        continue;
      }
      answered++;
      for (const o of r.value) if (!merged.has(o.key)) merged.set(o.key, o);
    }
    if (answered === 0) throw firstError;
    return [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
