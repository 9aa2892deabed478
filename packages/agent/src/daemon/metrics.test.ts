import { describe, expect, it } from 'vitest';
import { configSchema } from '@strata/core';
import { renderMetrics, type ClusterProbe } from './metrics.js';
import type { AgentState } from './state.js';

const config = configSchema.parse({ clusters: { main: { pgdata: '/pg' } }, repos: [{ name: 'r', plugin: 'fs', path: '/r' }] });

const state: AgentState = {
  format: 1,
  pid: 1,
  hostname: 'h',
  config: '/etc/strata/strata.yaml',
  startedAt: '2026-11-22T00:00:00.000Z',
  updatedAt: '2026-11-22T00:00:00.000Z',
  clusters: {
    'db"1': {
      jobs: {
        full: { schedule: '0 2 * * 0', nextRun: '2026-11-29T02:00:00.000Z', runs: { succeeded: 3, failed: 1, skipped: 0, interrupted: 2 } },
      },
      lastBackup: {
        full: { label: '20261122-020000F', finishedAt: '2026-11-22T02:10:00.000Z', bytes: 1000, repoBytes: 400, durationSeconds: 600.5 },
      },
    },
  },
};

describe('renderMetrics', () => {
  it('exports what the state and probes hold, escapes labels, and leaves out what was not measured', () => {
    const text = renderMetrics({ state, config, repos: new Map(), running: [{ cluster: 'db"1', kind: 'full' }] }, new Map());
    const lines = text.split('\n');
    expect(lines).toContain('strata_agent_start_time_seconds 1795305600');
    expect(lines).toContain('strata_backup_last_success_timestamp_seconds{cluster="db\\"1",type="full"} 1795313400');
    expect(lines).toContain('strata_backup_last_size_bytes{cluster="db\\"1",type="full"} 1000');
    expect(lines).toContain('strata_backup_last_stored_bytes{cluster="db\\"1",type="full"} 400');
    expect(lines).toContain('strata_backup_last_duration_seconds{cluster="db\\"1",type="full"} 600.5');
    expect(lines).toContain('strata_job_runs_total{cluster="db\\"1",job="full",outcome="interrupted"} 2');
    expect(lines).toContain('strata_job_failures_total{cluster="db\\"1",job="full"} 1');
    expect(lines).toContain('strata_job_running{cluster="db\\"1",job="full"} 1');
    expect(lines).toContain('# TYPE strata_job_failures_total counter');
    // No probe, no rehearsal: no WAL or rehearsal series at all (never a made-up zero).
    expect(text).not.toMatch(/strata_wal_|strata_rehearsal_|strata_postgres_up/);
  });

  it('exports the probe: archive lag, PostgreSQL reachability and the newest rehearsal', () => {
    const probe: ClusterProbe = {
      postgresUp: true,
      lagSegments: 2,
      lagSeconds: 31.5,
      archiveFailed: 4,
      newestArchivedAt: 1795313000,
      rehearsal: {
        format: 1,
        cluster: 'db"1',
        repo: 'r',
        passed: false,
        startedAt: '2026-11-22T03:00:00.000Z',
        finishedAt: '2026-11-22T03:01:00.000Z',
        rtoSeconds: 42.25,
        checks: [],
        tables: [],
        durationSeconds: 60,
      },
    };
    const text = renderMetrics({ state, config, repos: new Map(), running: [] }, new Map([['db"1', probe]]));
    const lines = text.split('\n');
    expect(lines).toContain('strata_wal_archive_lag_segments{cluster="db\\"1"} 2');
    expect(lines).toContain('strata_wal_archive_lag_seconds{cluster="db\\"1"} 31.5');
    expect(lines).toContain('strata_wal_archive_failed_total{cluster="db\\"1"} 4');
    expect(lines).toContain('strata_postgres_up{cluster="db\\"1"} 1');
    expect(lines).toContain('strata_rehearsal_last_passed{cluster="db\\"1"} 0');
    expect(lines).toContain('strata_rehearsal_rto_seconds{cluster="db\\"1"} 42.25');
    expect(lines).toContain('strata_job_running{cluster="db\\"1",job="full"} 0');
    // The failed rehearsal measured no RPO: none is exported.
    expect(text).not.toContain('strata_rehearsal_rpo_seconds{');
  });
});

describe('renderMetrics: 3-2-1 and copies', () => {
  it('exports the newest check: the verdict, counts, and each repository reachability, lag and queue', () => {
    const withCheck: AgentState = {
      ...state,
      clusters: {
        main: {
          jobs: {},
          lastBackup: {},
          lastCheck: {
            finishedAt: '2026-11-22T03:00:00.000Z',
            ok: false,
            rule321: false,
            copies: 3,
            mediaKinds: 2,
            offsiteCopies: 0,
            repositories: [
              { repo: 'local', reachable: true, level: true, lagBackups: 0, lagWalFiles: 0, queued: 0 },
              { repo: 'offsite', reachable: true, level: false, lagBackups: 1, lagWalFiles: 7, queued: 12 },
              { repo: 'tape', reachable: false, level: false, lagBackups: 0, lagWalFiles: 0, queued: 3 },
            ],
          },
        },
      },
    };
    const lines = renderMetrics({ state: withCheck, config, repos: new Map(), running: [] }, new Map()).split('\n');
    expect(lines).toContain('strata_rule321_met{cluster="main"} 0');
    expect(lines).toContain('strata_copies{cluster="main"} 3');
    expect(lines).toContain('strata_media_kinds{cluster="main"} 2');
    expect(lines).toContain('strata_offsite_copies{cluster="main"} 0');
    expect(lines).toContain('strata_check_last_timestamp_seconds{cluster="main"} 1795316400');
    expect(lines).toContain('strata_repository_lag_backups{cluster="main",repo="offsite"} 1');
    expect(lines).toContain('strata_repository_lag_wal_files{cluster="main",repo="offsite"} 7');
    expect(lines).toContain('strata_repository_queued_objects{cluster="main",repo="offsite"} 12');
    expect(lines).toContain('strata_repository_up{cluster="main",repo="tape"} 0');
    // An unreachable copy's lag is unknown: no made-up zero.
    expect(lines.some((l) => l.startsWith('strata_repository_lag_backups{cluster="main",repo="tape"}'))).toBe(false);
  });
});
