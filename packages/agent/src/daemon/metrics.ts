import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger as PinoLogger } from 'pino';
import {
  PgSession,
  SEGMENT_RE,
  keys,
  latestRehearsal,
  parseSegmentName,
  parseWalObjectName,
  type ClusterConfig,
  type RehearsalResult,
  type Repo,
  type StrataConfig,
} from '@strata/core';
import type { AgentState, JobKind } from './state.js';

export interface MetricsSource {
  state: AgentState;
  config: StrataConfig;
  repos: Map<string, Repo>;
  running: { cluster: string; kind: JobKind }[];
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: Sample[];
}

/** What the agent measures live per cluster: WAL archive lag and the newest rehearsal. */
export interface ClusterProbe {
  postgresUp: boolean;
  /** Segments PostgreSQL has completed that are not in the repository yet. */
  lagSegments?: number;
  /** Seconds the oldest of those has been waiting. */
  lagSeconds?: number;
  archiveFailed?: number;
  newestArchivedAt?: number;
  rehearsal?: RehearsalResult;
}

/** Prometheus text exposition (version 0.0.4), rendered from the agent's state and live probes. */
export function renderMetrics(src: MetricsSource, probes: Map<string, ClusterProbe>): string {
  const fams: Family[] = [];
  const fam = (name: string, type: Family['type'], help: string): Sample[] => {
    const f: Family = { name, type, help, samples: [] };
    fams.push(f);
    return f.samples;
  };
  const t = (iso: string) => Date.parse(iso) / 1000;

  fam('strata_agent_start_time_seconds', 'gauge', 'When the agent started (Unix time).').push({
    labels: {},
    value: t(src.state.startedAt),
  });
  const lastTime = fam(
    'strata_backup_last_success_timestamp_seconds',
    'gauge',
    'End of the last successful backup of each type (Unix time).',
  );
  const lastSize = fam(
    'strata_backup_last_size_bytes',
    'gauge',
    'Bytes of the data directory the last successful backup of each type covers.',
  );
  const lastStored = fam(
    'strata_backup_last_stored_bytes',
    'gauge',
    'Bytes the last successful backup of each type stored in the repository.',
  );
  const lastDur = fam('strata_backup_last_duration_seconds', 'gauge', 'Duration of the last successful backup of each type.');
  const runs = fam('strata_job_runs_total', 'counter', 'Scheduled job runs by outcome (succeeded, failed, skipped, interrupted).');
  const failures = fam('strata_job_failures_total', 'counter', 'Scheduled job runs that failed.');
  const running = fam('strata_job_running', 'gauge', '1 while the job runs.');
  const next = fam('strata_job_next_run_timestamp_seconds', 'gauge', 'Next scheduled run of the job (Unix time).');
  const rTime = fam('strata_rehearsal_last_timestamp_seconds', 'gauge', 'End of the newest restore rehearsal (Unix time).');
  const rPassed = fam('strata_rehearsal_last_passed', 'gauge', '1 when the newest restore rehearsal passed, else 0.');
  const rto = fam(
    'strata_rehearsal_rto_seconds',
    'gauge',
    'RTO measured by the newest restore rehearsal: start to accepting queries after promotion.',
  );
  const rpo = fam(
    'strata_rehearsal_rpo_seconds',
    'gauge',
    'RPO measured by the newest restore rehearsal: archive read time minus the last recovered commit.',
  );
  const pgUp = fam('strata_postgres_up', 'gauge', '1 when the agent could query the cluster for archive status.');
  const lagSeg = fam('strata_wal_archive_lag_segments', 'gauge', 'WAL segments PostgreSQL completed that are not in the repository yet.');
  const lagSec = fam(
    'strata_wal_archive_lag_seconds',
    'gauge',
    'Seconds the oldest WAL segment not yet in the repository has been waiting (0 when none).',
  );
  const failed = fam(
    'strata_wal_archive_failed_total',
    'counter',
    "PostgreSQL's failed archive_command calls (pg_stat_archiver.failed_count).",
  );
  const newest = fam(
    'strata_wal_last_archived_timestamp_seconds',
    'gauge',
    'When the newest WAL segment in the repository was stored (Unix time).',
  );

  const rule = fam(
    'strata_rule321_met',
    'gauge',
    '1 when the newest check found the 3-2-1 rule met (3 copies, 2 media kinds, 1 offsite), else 0.',
  );
  const copies = fam('strata_copies', 'gauge', 'Copies holding every backup and WAL file at the newest check, the live cluster included.');
  const media = fam('strata_media_kinds', 'gauge', 'Kinds of media among those copies at the newest check.');
  const offsite = fam('strata_offsite_copies', 'gauge', 'Offsite copies at the newest check.');
  const checkTime = fam('strata_check_last_timestamp_seconds', 'gauge', 'End of the newest check (Unix time).');
  const repoUp = fam('strata_repository_up', 'gauge', '1 when the newest check could list the repository, else 0.');
  const lagBackups = fam('strata_repository_lag_backups', 'gauge', 'Backups other copies hold that this repository misses (newest check).');
  const lagWal = fam('strata_repository_lag_wal_files', 'gauge', 'WAL files other copies hold that this repository misses (newest check).');
  const queued = fam('strata_repository_queued_objects', 'gauge', 'Writes this repository missed, waiting in the local replication queue.');

  for (const [cluster, cs] of Object.entries(src.state.clusters)) {
    const c = cs.lastCheck;
    if (c) {
      rule.push({ labels: { cluster }, value: c.rule321 ? 1 : 0 });
      copies.push({ labels: { cluster }, value: c.copies });
      media.push({ labels: { cluster }, value: c.mediaKinds });
      offsite.push({ labels: { cluster }, value: c.offsiteCopies });
      checkTime.push({ labels: { cluster }, value: t(c.finishedAt) });
      for (const r of c.repositories) {
        const labels = { cluster, repo: r.repo };
        repoUp.push({ labels, value: r.reachable ? 1 : 0 });
        if (r.reachable) {
          lagBackups.push({ labels, value: r.lagBackups });
          lagWal.push({ labels, value: r.lagWalFiles });
        }
        queued.push({ labels, value: r.queued });
      }
    }
    for (const [type, b] of Object.entries(cs.lastBackup)) {
      const labels = { cluster, type };
      lastTime.push({ labels, value: t(b.finishedAt) });
      lastSize.push({ labels, value: b.bytes });
      lastStored.push({ labels, value: b.repoBytes });
      lastDur.push({ labels, value: b.durationSeconds });
    }
    for (const [job, js] of Object.entries(cs.jobs)) {
      for (const [outcome, n] of Object.entries(js.runs)) runs.push({ labels: { cluster, job, outcome }, value: n });
      failures.push({ labels: { cluster, job }, value: js.runs.failed });
      running.push({ labels: { cluster, job }, value: src.running.some((r) => r.cluster === cluster && r.kind === job) ? 1 : 0 });
      if (js.nextRun) next.push({ labels: { cluster, job }, value: t(js.nextRun) });
    }
    const p = probes.get(cluster);
    const reh = p?.rehearsal;
    if (reh) {
      rTime.push({ labels: { cluster }, value: t(reh.finishedAt) });
      rPassed.push({ labels: { cluster }, value: reh.passed ? 1 : 0 });
      if (reh.rtoSeconds !== undefined) rto.push({ labels: { cluster }, value: reh.rtoSeconds });
      if (reh.rpoSeconds !== undefined) rpo.push({ labels: { cluster }, value: reh.rpoSeconds });
    }
    if (p) {
      pgUp.push({ labels: { cluster }, value: p.postgresUp ? 1 : 0 });
      if (p.lagSegments !== undefined) lagSeg.push({ labels: { cluster }, value: p.lagSegments });
      if (p.lagSeconds !== undefined) lagSec.push({ labels: { cluster }, value: p.lagSeconds });
      if (p.archiveFailed !== undefined) failed.push({ labels: { cluster }, value: p.archiveFailed });
      if (p.newestArchivedAt !== undefined) newest.push({ labels: { cluster }, value: p.newestArchivedAt });
    }
  }
  const out: string[] = [];
  for (const f of fams) {
    if (f.samples.length === 0 && f.name !== 'strata_agent_start_time_seconds') continue;
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return `${out.join('\n')}\n`;
}

function formatLabels(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatValue(v: number): string {
  return Number.isFinite(v) ? String(v) : 'NaN';
}

/** Live facts per cluster: PostgreSQL's archive status against the repository's newest segment. */
export async function probeCluster(name: string, cluster: ClusterConfig, repo: Repo | undefined): Promise<ClusterProbe> {
  const probe: ClusterProbe = { postgresUp: false };
  let newestSeg: string | undefined;
  let newestAt: number | undefined;
  if (repo) {
    for await (const o of repo.list(keys.walRoot(name))) {
      const walName = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1))?.walName;
      if (!walName || !SEGMENT_RE.test(walName)) continue;
      if (!newestSeg || walName > newestSeg) {
        newestSeg = walName;
        newestAt = o.mtime ? o.mtime.getTime() / 1000 : undefined;
      }
    }
    if (newestAt !== undefined) probe.newestArchivedAt = newestAt;
    probe.rehearsal = await latestRehearsal(repo, name).catch(() => undefined);
  }
  let session: PgSession | undefined;
  try {
    session = await PgSession.connect(cluster, 'strata-agent-metrics');
    const s = await session.one<{ rec: boolean; failed: string; seg: string }>(
      `SELECT pg_is_in_recovery() AS rec, (SELECT failed_count FROM pg_stat_archiver)::text AS failed,
              (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg`,
    );
    probe.postgresUp = true;
    probe.archiveFailed = Number(s.failed);
    if (!s.rec) {
      const segSize = Number(s.seg);
      const cur = await session.one<{ w: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS w');
      const ready = await session.query<{ name: string; modification: Date }>(
        `SELECT name, modification FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready' ORDER BY modification`,
      );
      const current = parseSegmentName(cur.w, segSize);
      let lag = ready.length;
      if (newestSeg) {
        const n = parseSegmentName(newestSeg, segSize);
        // The current segment is still being written: everything before it is complete.
        if (n.timeline === current.timeline) lag = Math.max(lag, Number(current.segNo - 1n - n.segNo));
      }
      probe.lagSegments = Math.max(0, lag);
      const oldestReady = ready[0]?.modification;
      probe.lagSeconds =
        probe.lagSegments === 0
          ? 0
          : oldestReady
            ? Math.max(0, Date.now() / 1000 - oldestReady.getTime() / 1000)
            : newestAt !== undefined
              ? Math.max(0, Date.now() / 1000 - newestAt)
              : undefined;
    }
  } catch {
    probe.postgresUp = false;
  } finally {
    await session?.close().catch(() => undefined);
  }
  return probe;
}

export class MetricsServer {
  private server: http.Server | undefined;
  private cache: { at: number; probes: Map<string, ClusterProbe> } | undefined;

  constructor(
    private readonly source: () => MetricsSource,
    private readonly log: PinoLogger,
  ) {}

  async listen(address: string): Promise<string> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(i + 1));
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return `${a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async probes(src: MetricsSource): Promise<Map<string, ClusterProbe>> {
    if (this.cache && Date.now() - this.cache.at < 2000) return this.cache.probes;
    const probes = new Map<string, ClusterProbe>();
    for (const [name, c] of Object.entries(src.config.clusters)) probes.set(name, await probeCluster(name, c, src.repos.get(name)));
    this.cache = { at: Date.now(), probes };
    return probes;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
        return;
      }
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('strata agent: metrics at /metrics\n');
        return;
      }
      const src = this.source();
      const body = renderMetrics(src, await this.probes(src));
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'metrics: scrape failed');
      res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed; see the agent log\n');
    }
  }
}
