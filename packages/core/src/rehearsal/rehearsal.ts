import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { ClusterConfig } from '../config/schema.js';
import { StrataError, isStrataError } from '../errors/index.js';
import { noopLogger, type Logger } from '../logger.js';
import type { Manifest } from '../manifest/types.js';
import { SEGMENT_RE, formatLsn, parseLsn, parseSegmentName, segmentName, segmentNameForLsn } from '../postgres/walNames.js';
import type { Repo } from '../repository/Repo.js';
import { keys, parseWalObjectName } from '../repository/keys.js';
import { chooseBackup } from '../restore/chooseBackup.js';
import { runRestore } from '../restore/restore.js';
import { findPgBin } from './pgBinaries.js';
import { storeRehearsal } from './rehearsalStore.js';
import type { RehearsalCheck, RehearsalResult } from './types.js';

const execFileP = promisify(execFile);

export interface RehearsalOptions {
  repo: Repo;
  clusterName: string;
  cluster: ClusterConfig;
  /** Compression for the stored result object. */
  compression: string;
  /** Backup to restore (default: the newest). */
  label?: string;
  /** restore_command for the rehearsal cluster, e.g. `strata archive-get --config … %f "%p"`. */
  restoreCommand: string;
  logger?: Logger;
  /** Aborting stops the rehearsal at the next step; the scratch cluster is still stopped and removed. */
  signal?: AbortSignal;
  /** Store the result in the repository (default true). */
  store?: boolean;
  /** Where the rehearsal is: restoring (with bytes), replaying WAL until promotion, running checks. */
  onProgress?: (p: { phase: 'restore' | 'recovery' | 'checks'; bytes?: number; totalBytes?: number }) => void;
}

interface Scratch {
  dir: string;
  pgdata: string;
  socketDir: string;
  logFile: string;
  uid?: number;
  gid?: number;
  home?: string;
}

/**
 * The restore rehearsal: restore a backup and all archived WAL into a scratch directory, start
 * PostgreSQL on a free loopback port with archiving off, wait for promotion, check the cluster,
 * measure RTO and RPO, stop and remove everything, and record the result in the repository.
 */
export async function runRehearsal(opts: RehearsalOptions): Promise<RehearsalResult & { key?: string }> {
  const log = opts.logger ?? noopLogger;
  const started = new Date();
  const result: RehearsalResult = {
    format: 1,
    cluster: opts.clusterName,
    repo: opts.repo.name,
    passed: false,
    startedAt: started.toISOString(),
    finishedAt: '',
    checks: [],
    tables: [],
    durationSeconds: 0,
  };
  let scratch: Scratch | undefined;
  let running: { bin: string } | undefined;
  try {
    const manifest = await chooseBackup(opts.repo, opts.clusterName, opts.label, undefined);
    result.label = manifest.label;
    result.pgVersion = Math.floor(manifest.pgVersionNum / 10000);
    const archiveReadAt = new Date();
    const wal = await checkArchive(opts.repo, opts.clusterName, manifest);
    result.newestSegment = wal.newest;
    result.checks.push({ name: 'wal-continuity', kind: 'wal', passed: true, detail: wal.detail });
    const bin = await findPgBin(opts.cluster.pgBin, result.pgVersion);
    abortPoint(opts.signal);

    scratch = await makeScratch(opts.cluster.rehearsal.scratchDir, opts.clusterName);
    log.info({ label: manifest.label, dir: scratch.dir }, 'rehearsal: restoring');
    await runRestore({
      repo: opts.repo,
      clusterName: opts.clusterName,
      pgdata: scratch.pgdata,
      label: manifest.label,
      archiveMode: 'off',
      restoreCommand: opts.restoreCommand,
      logger: log,
      onProgress: (p) => opts.onProgress?.({ phase: 'restore', bytes: p.bytes, totalBytes: p.totalBytes }),
    });
    await ownScratch(scratch);
    opts.onProgress?.({ phase: 'recovery' });
    abortPoint(opts.signal);

    const port = await freeLoopbackPort();
    log.info({ port }, 'rehearsal: starting PostgreSQL');
    running = { bin };
    await startPostgres(bin, scratch, port, opts.cluster.rehearsal.timeout);
    const deadline = Date.now() + opts.cluster.rehearsal.timeout * 1000;
    const conn = { host: scratch.socketDir, port, user: opts.cluster.user };
    await waitForPromotion(conn, opts.cluster.database, deadline, scratch, opts.signal);
    result.rtoSeconds = round((Date.now() - started.getTime()) / 1000);
    result.checks.push({ name: 'promoted', kind: 'recovery', passed: true, detail: 'pg_is_in_recovery() is false' });
    log.info({ rtoSeconds: result.rtoSeconds }, 'rehearsal: cluster promoted and accepting queries');

    opts.onProgress?.({ phase: 'checks' });
    const client = await connect(conn, opts.cluster.database);
    try {
      const row = (await client.query<{ ts: Date | null }>('SELECT pg_last_xact_replay_timestamp() AS ts')).rows[0];
      const recoveredTo = row?.ts ?? new Date(manifest.stopTime);
      result.recoveredTo = recoveredTo.toISOString();
      result.rpoSeconds = round(Math.max(0, (archiveReadAt.getTime() - recoveredTo.getTime()) / 1000));
      const end = await recoveryEnd(client, scratch.pgdata);
      if (end) {
        result.recoveryEndLsn = end.lsn;
        result.checks.push(checkRecoveryReachedEnd(end, wal, manifest.walSegmentSize));
      }
      result.tables = await countLargestTables(client, opts.cluster.rehearsal.countTables);
    } finally {
      await client.end().catch(() => undefined);
    }
    for (const c of opts.cluster.rehearsal.checks) {
      abortPoint(opts.signal);
      result.checks.push(await runSqlCheck(conn, c.database ?? opts.cluster.database, c));
    }
    if (opts.cluster.rehearsal.amcheck) result.checks.push(await runAmcheck(bin, conn, opts.cluster.database));
    const failed = result.checks.filter((c) => !c.passed);
    result.passed = failed.length === 0;
    if (failed.length) result.error = `check(s) failed: ${failed.map((c) => `${c.name} (${c.detail})`).join('; ')}`;
  } catch (err) {
    result.passed = false;
    result.error = isStrataError(err) ? err.message : (err as Error).message;
    log.error({ err: result.error }, 'rehearsal failed');
  } finally {
    if (running && scratch) await stopPostgres(running.bin, scratch, log);
    if (scratch)
      await fs
        .rm(scratch.dir, { recursive: true, force: true })
        .catch((e: unknown) => log.warn({ err: String(e) }, 'could not remove the scratch directory'));
  }
  result.finishedAt = new Date().toISOString();
  result.durationSeconds = round((Date.parse(result.finishedAt) - started.getTime()) / 1000);
  // An interrupted rehearsal is no verdict on the backup: nothing is stored.
  if (opts.store === false || opts.signal?.aborted) return result;
  const key = await storeRehearsal(opts.repo, result, opts.compression);
  return { ...result, key };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function abortPoint(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StrataError('Aborted', 'the rehearsal was interrupted');
}

interface ArchiveView {
  newest?: string;
  /** Newest segment on the backup's timeline. */
  newestOnTimeline: string;
  detail: string;
}

/**
 * Every segment from the backup's start to the newest on its timeline must be in the archive:
 * PostgreSQL would otherwise end recovery silently at the hole and promote a cluster that lacks
 * everything after it.
 */
async function checkArchive(repo: Repo, cluster: string, m: Manifest): Promise<ArchiveView> {
  const segSize = m.walSegmentSize;
  const present = new Set<string>();
  let newest: string | undefined;
  for await (const o of repo.list(keys.walRoot(cluster))) {
    const name = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1))?.walName;
    if (!name || !SEGMENT_RE.test(name)) continue;
    present.add(name);
    if (!newest || name > newest) newest = name;
  }
  const start = parseSegmentName(m.startWal, segSize);
  let last = start.segNo;
  for (const s of present) {
    const p = parseSegmentName(s, segSize);
    if (p.timeline === start.timeline && p.segNo > last) last = p.segNo;
  }
  for (let s = start.segNo; s <= last; s++) {
    const name = segmentName(start.timeline, s, segSize);
    if (!present.has(name)) {
      throw new StrataError(
        'Integrity',
        `WAL segment ${name} is missing from ${repo.describe()}: recovery from backup ${m.label} would stop there`,
        {
          context: { segment: name },
          hint: 'copy the segment from another repository copy, or take a new full backup so recovery does not need it',
        },
      );
    }
  }
  const newestOnTimeline = segmentName(start.timeline, last, segSize);
  return {
    newest,
    newestOnTimeline,
    detail: `${m.startWal} .. ${newestOnTimeline}: ${Number(last - start.segNo) + 1} segments, none missing`,
  };
}

async function makeScratch(root: string | undefined, cluster: string): Promise<Scratch> {
  const base = root ?? os.tmpdir();
  await fs.mkdir(base, { recursive: true });
  const dir = await fs.mkdtemp(path.join(base, `strata-rehearsal-${cluster}-`));
  const socketDir = path.join(dir, 'sock');
  await fs.mkdir(socketDir, { mode: 0o700 });
  return { dir, pgdata: path.join(dir, 'data'), socketDir, logFile: path.join(dir, 'server.log') };
}

/**
 * PostgreSQL refuses to run as root: as root, the scratch cluster runs as the owner of the restored
 * files (the backed-up cluster's owner), or the postgres user.
 */
async function ownScratch(s: Scratch): Promise<void> {
  await fs.writeFile(path.join(s.dir, 'pg_hba.conf'), 'local all all trust\n', { mode: 0o600 });
  try {
    await fs.access(path.join(s.pgdata, 'postgresql.conf'));
  } catch {
    // Debian keeps postgresql.conf in /etc: run with an empty one (plus the command-line settings).
    await fs.writeFile(path.join(s.dir, 'postgresql.conf'), '', { mode: 0o600 });
  }
  if (process.getuid?.() !== 0) return;
  const st = await fs.stat(s.pgdata);
  let { uid, gid } = st;
  if (uid === 0) ({ uid, gid } = await userIds('postgres'));
  s.uid = uid;
  s.gid = gid;
  s.home = await homeOf(uid);
  // Our own files, and those restore writes itself (as root, owned by root) rather than from the backup.
  const written = ['backup_label', 'tablespace_map', 'recovery.signal', 'standby.signal', 'postgresql.auto.conf'].map((f) =>
    path.join(s.pgdata, f),
  );
  for (const p of [s.dir, s.socketDir, path.join(s.dir, 'pg_hba.conf'), path.join(s.dir, 'postgresql.conf'), ...written])
    await fs.chown(p, uid, gid).catch(() => undefined);
}

/** The user's home directory: child processes (restore_command) must not try to use root's. */
async function homeOf(uid: number): Promise<string | undefined> {
  try {
    return (await execFileP('getent', ['passwd', String(uid)])).stdout.split(':')[5] || undefined;
  } catch {
    return undefined;
  }
}

async function userIds(user: string): Promise<{ uid: number; gid: number }> {
  try {
    const uid = Number((await execFileP('id', ['-u', user])).stdout.trim());
    const gid = Number((await execFileP('id', ['-g', user])).stdout.trim());
    return { uid, gid };
  } catch (err) {
    throw new StrataError('Precondition', `the restored files belong to root and there is no "${user}" OS user to run PostgreSQL as`, {
      cause: err,
    });
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no free port'))));
    });
  });
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function runAsOwner(file: string, args: string[], s: Scratch, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: s.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(s.uid !== undefined ? { uid: s.uid, gid: s.gid } : {}),
      env: { ...process.env, LC_ALL: 'C', ...(s.home ? { HOME: s.home } : {}) },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function startPostgres(bin: string, s: Scratch, port: number, timeoutSeconds: number): Promise<void> {
  const hasConf = await fs.access(path.join(s.pgdata, 'postgresql.conf')).then(
    () => true,
    () => false,
  );
  // Command-line settings override the restored configuration: its own port and socket, no
  // archiving, no replication, no SSL files it may not have here, and logging to our file.
  const settings: Record<string, string> = {
    config_file: hasConf ? path.join(s.pgdata, 'postgresql.conf') : path.join(s.dir, 'postgresql.conf'),
    hba_file: path.join(s.dir, 'pg_hba.conf'),
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: s.socketDir,
    archive_mode: 'off',
    primary_conninfo: '',
    ssl: 'off',
    logging_collector: 'off',
    log_destination: 'stderr',
    hot_standby: 'on',
    cluster_name: 'strata-rehearsal',
  };
  const o = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${shq(v)}`)
    .join(' ');
  // pg_ctl -w returns once the server accepts connections; a failed start names the log.
  const res = await runAsOwner(
    path.join(bin, 'pg_ctl'),
    ['start', '-D', s.pgdata, '-l', s.logFile, '-w', '-t', String(Math.ceil(timeoutSeconds)), '-o', o],
    s,
    (timeoutSeconds + 30) * 1000,
  );
  if (res.code !== 0) {
    throw new StrataError(
      'PostgresError',
      `the rehearsal cluster did not start: ${res.out.trim().split('\n').pop() ?? ''}\n${await logTail(s)}`,
      {
        hint: 'the server log above says why; settings the restored cluster needs (extensions, shared_preload_libraries) must be installed on this host',
      },
    );
  }
}

async function logTail(s: Scratch, n = 15): Promise<string> {
  const text = await fs.readFile(s.logFile, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

async function stopPostgres(bin: string, s: Scratch, log: Logger): Promise<void> {
  const exists = await fs.access(path.join(s.pgdata, 'postmaster.pid')).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  const res = await runAsOwner(path.join(bin, 'pg_ctl'), ['stop', '-D', s.pgdata, '-m', 'immediate', '-w', '-t', '60'], s, 90_000).catch(
    (e: unknown) => ({ code: -1, out: String(e) }),
  );
  if (res.code !== 0) log.warn({ out: res.out.trim() }, 'rehearsal: pg_ctl stop failed');
}

interface Conn {
  host: string;
  port: number;
  user: string;
}

async function connect(c: Conn, database: string): Promise<pg.Client> {
  const { default: pgModule } = await import('pg');
  const client = new pgModule.Client({ ...c, database, application_name: 'strata-rehearsal', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function waitForPromotion(c: Conn, database: string, deadline: number, s: Scratch, signal?: AbortSignal): Promise<void> {
  let lastErr = '';
  for (;;) {
    abortPoint(signal);
    try {
      const client = await connect(c, database);
      try {
        const r = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        if (r.rows[0]?.r === false) return;
        lastErr = 'still in recovery';
      } finally {
        await client.end().catch(() => undefined);
      }
    } catch (err) {
      lastErr = (err as Error).message;
    }
    const pid = await fs.access(path.join(s.pgdata, 'postmaster.pid')).then(
      () => true,
      () => false,
    );
    if (!pid) throw new StrataError('PostgresError', `the rehearsal cluster stopped during recovery\n${await logTail(s)}`);
    if (Date.now() > deadline) {
      throw new StrataError('Timeout', `the rehearsal cluster did not finish recovery in time (${lastErr})\n${await logTail(s)}`, {
        hint: 'raise clusters.<name>.rehearsal.timeout',
      });
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface RecoveryEnd {
  timeline: number;
  parentTimeline: number;
  lsn: string;
}

/** The switch point recorded in the new timeline's history file: where recovery ended. */
async function recoveryEnd(client: pg.Client, pgdata: string): Promise<RecoveryEnd | undefined> {
  const r = await client.query<{ w: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS w');
  const tli = parseInt(r.rows[0]!.w.slice(0, 8), 16);
  const file = path.join(pgdata, 'pg_wal', `${tli.toString(16).toUpperCase().padStart(8, '0')}.history`);
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => /^\d+\s/.test(l));
  const last = lines.pop();
  if (!last) return undefined;
  const [parent, lsn] = last.split(/\s+/);
  return { timeline: tli, parentTimeline: Number(parent), lsn: formatLsn(parseLsn(lsn!)) };
}

function checkRecoveryReachedEnd(end: RecoveryEnd, wal: ArchiveView, segSize: number): RehearsalCheck {
  const endSeg = segmentNameForLsn(end.parentTimeline, parseLsn(end.lsn), segSize);
  const newest = parseSegmentName(wal.newestOnTimeline, segSize);
  const got = parseSegmentName(endSeg, segSize);
  if (got.timeline !== newest.timeline) {
    return { name: 'replayed-all-wal', kind: 'wal', passed: true, skipped: true, detail: `recovery followed timeline ${got.timeline}` };
  }
  if (got.segNo >= newest.segNo)
    return {
      name: 'replayed-all-wal',
      kind: 'wal',
      passed: true,
      detail: `recovery ended at ${end.lsn}, in or after ${wal.newestOnTimeline}`,
    };
  const next = segmentName(got.timeline, got.segNo + 1n, segSize);
  return {
    name: 'replayed-all-wal',
    kind: 'wal',
    passed: false,
    detail: `recovery ended at ${end.lsn} in ${endSeg}, but the archive holds WAL up to ${wal.newestOnTimeline}: segment ${next} could not be restored`,
  };
}

async function countLargestTables(client: pg.Client, n: number): Promise<{ name: string; rows: number }[]> {
  if (n === 0) return [];
  const tables = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY pg_total_relation_size(c.oid) DESC, 1 LIMIT $1`,
    [n],
  );
  const out: { name: string; rows: number }[] = [];
  for (const { name } of tables.rows) {
    // The name comes from format('%I.%I'): quoted as an identifier by PostgreSQL.
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`);
    out.push({ name, rows: Number(r.rows[0]!.n) });
  }
  return out;
}

async function runSqlCheck(c: Conn, database: string, check: { name: string; sql: string; expect: string }): Promise<RehearsalCheck> {
  let client: pg.Client | undefined;
  try {
    client = await connect(c, database);
    const r = await client.query<Record<string, unknown>>({ text: check.sql, rowMode: 'array' } as pg.QueryConfig);
    const rows = r.rows as unknown as unknown[][];
    const got = rows[0]?.[0];
    const text = cellText(got);
    return {
      name: check.name,
      kind: 'sql',
      passed: text === check.expect,
      detail: text === check.expect ? `returned ${text}` : `returned ${text}, expected ${check.expect}`,
    };
  } catch (err) {
    return { name: check.name, kind: 'sql', passed: false, detail: `error: ${(err as Error).message}` };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

async function runAmcheck(bin: string, c: Conn, database: string): Promise<RehearsalCheck> {
  const tool = path.join(bin, 'pg_amcheck');
  const installed = await fs.access(tool, fs.constants.X_OK).then(
    () => true,
    () => false,
  );
  if (!installed) return { name: 'pg_amcheck', kind: 'amcheck', passed: true, skipped: true, detail: `${tool} is not installed` };
  const client = await connect(c, database);
  try {
    const r = await client.query('SELECT 1 FROM pg_available_extensions WHERE name = $1', ['amcheck']);
    if (r.rowCount === 0)
      return { name: 'pg_amcheck', kind: 'amcheck', passed: true, skipped: true, detail: 'the amcheck extension is not installed' };
  } finally {
    await client.end().catch(() => undefined);
  }
  try {
    await execFileP(tool, ['-h', c.host, '-p', String(c.port), '-U', c.user, '-d', database, '--install-missing'], {
      timeout: 30 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { name: 'pg_amcheck', kind: 'amcheck', passed: true, detail: 'heap and btree checks found no corruption' };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(0, 5).join(' | ');
    return { name: 'pg_amcheck', kind: 'amcheck', passed: false, detail: out || e.message };
  }
}

function cellText(v: unknown): string {
  if (v === undefined) return '(no row)';
  if (v === null) return 'NULL';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
  return JSON.stringify(v);
}
