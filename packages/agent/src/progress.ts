/**
 * Progress of a backup or restore on a terminal: bytes done of the total, rate and ETA on one
 * line of stderr, redrawn at most every `intervalMs`. Silent unless stderr is a TTY, and when the
 * user asked for JSON or for log lines (which would interleave with it).
 */
export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressSample {
  bytes: number;
  totalBytes?: number;
  elapsedMs: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function bytesText(n: number): string {
  let v = n;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${UNITS[i]}`;
}

function durationText(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line, e.g. `copy 1.2 GiB / 1.5 GiB (80%)  350.0 MiB/s  ETA 1s`. */
export function formatProgress(verb: string, p: ProgressSample): string {
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? p.bytes / seconds : 0;
  const total = p.totalBytes && p.totalBytes > 0 ? p.totalBytes : undefined;
  const done = total
    ? `${bytesText(p.bytes)} / ${bytesText(total)} (${Math.min(100, Math.floor((p.bytes / total) * 100))}%)`
    : bytesText(p.bytes);
  const eta = total && rate > 0 ? `  ETA ${durationText(Math.max(0, total - p.bytes) / rate)}` : '';
  return `${verb} ${done}  ${bytesText(rate)}/s${eta}`;
}

export class ProgressLine {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly verb: string,
    private readonly stream: ProgressStream,
    readonly enabled: boolean,
    private readonly intervalMs = 250,
  ) {}

  /** Whether progress is drawn: a TTY, no --json, no explicit --log-level. */
  static wanted(stream: ProgressStream, opts: { json: boolean; logLevelGiven: boolean }): boolean {
    return stream.isTTY === true && !opts.json && !opts.logLevelGiven;
  }

  update(bytes: number, totalBytes?: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    this.draw(bytes, totalBytes);
  }

  /** A phase without a byte count (e.g. "replaying WAL"), with the time spent so far; redrawn every second by the caller or on change. */
  phase(text: string): void {
    if (!this.enabled) return;
    this.lastDraw = Date.now();
    this.stream.write(`\r\x1b[2K${this.verb}: ${text}  ${durationText((Date.now() - this.started) / 1000)}`);
    this.drawn = true;
  }

  /** Clears the line (before the final message). */
  done(): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[2K');
  }

  private draw(bytes: number, totalBytes?: number): void {
    this.stream.write(`\r\x1b[2K${formatProgress(this.verb, { bytes, totalBytes, elapsedMs: Date.now() - this.started })}`);
    this.drawn = true;
  }
}
