import { Flags } from '@oclif/core';
import {
  ReplicatedRepository,
  StrataError,
  assertLabel,
  parseRate,
  parseTarget,
  runRestore,
  type Fallback,
  type RestoreResult,
} from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { assertCanDecrypt } from '../plugins/encryption.js';
import { contextFlags, strataCommandPrefix } from '../self.js';
import { fmtBytes } from './backup.js';

export default class Restore extends BaseCommand<typeof Restore> {
  static override summary = 'Restore a backup, to the end of archived WAL or to a point in time.';
  static override description = `Restores into an empty or new directory (never over existing files), verifying every page and file checksum, restoring modes, owners and times, and writes recovery.signal and postgresql.auto.conf with restore_command and the recovery target. Start PostgreSQL on the directory to replay WAL. Without --set, the newest backup that finished before the target is chosen.`;
  static override examples = [
    `<%= config.bin %> restore --pgdata /var/lib/postgresql/15/restored --target-time '2026-11-22 14:03:00+00' --target-action promote`,
    '<%= config.bin %> restore --set 20261122-020000F --target-name before_migration',
    '<%= config.bin %> restore --pgdata /srv/pg --target-xid 123456 --target-exclusive',
    '<%= config.bin %> restore --delta --pgdata /var/lib/postgresql/15/main   # rewind a stopped cluster, fetching only what differs',
  ];
  static override flags = {
    set: Flags.string({ description: 'backup label to restore (default: chosen from the target)' }),
    pgdata: Flags.string({ description: "target data directory (default: the cluster's pgdata); must be empty or absent" }),
    'target-time': Flags.string({ description: "recover to this time; needs a UTC offset, e.g. '2026-11-22 14:03:00+00'" }),
    'target-xid': Flags.string({ description: 'recover to this transaction id' }),
    'target-lsn': Flags.string({ description: 'recover to this WAL location, e.g. 0/16B3748' }),
    'target-name': Flags.string({ description: 'recover to this restore point (pg_create_restore_point)' }),
    'target-immediate': Flags.boolean({ description: 'stop as soon as the backup is consistent' }),
    'target-action': Flags.option({
      options: ['promote', 'pause', 'shutdown'] as const,
      description: "what PostgreSQL does at the target (PostgreSQL's default: pause)",
    })(),
    'target-exclusive': Flags.boolean({ description: 'stop just before the target instead of just after it' }),
    'target-timeline': Flags.string({ description: 'timeline to follow: latest, current or a number' }),
    'archive-mode': Flags.option({
      options: ['preserve', 'off'] as const,
      default: 'preserve',
      description: 'off: the restored cluster does not archive (for copies and rehearsals)',
    })(),
    'tablespace-map': Flags.string({ multiple: true, description: 'OID=DIR or NAME=DIR: restore a tablespace elsewhere' }),
    delta: Flags.boolean({
      description:
        'restore over an existing, stopped data directory: compare page by page, fetch only what differs, remove files the backup does not have',
    }),
    force: Flags.boolean({
      description: 'with --delta: keep files whose size and mtime match the backup without reading them',
      dependsOn: ['delta'],
    }),
    'process-max': Flags.integer({
      min: 1,
      max: 64,
      description: 'worker threads decompressing and verifying (default: restore.processMax, else 2 or the cores when fewer)',
    }),
    'max-rate': Flags.string({
      description: 'limit writing to the data directory to this many bytes/s, e.g. 100MB (default: restore.maxRate)',
    }),
    'restore-command': Flags.string({
      description: 'restore_command to write (default: this strata with the same --config and --cluster)',
    }),
  };

  async run(): Promise<RestoreResult & { fallbacks: Fallback[] }> {
    const f = this.flags;
    if (f.set !== undefined) assertLabel(f.set);
    const target = parseTarget({
      time: f['target-time'],
      xid: f['target-xid'],
      lsn: f['target-lsn'],
      name: f['target-name'],
      immediate: f['target-immediate'],
    });
    if (f['target-action'] && !target)
      throw new StrataError('InvalidArgument', '--target-action needs a recovery target (--target-time, --target-xid, ...)');
    if (f['target-exclusive'] && (!target || target.kind === 'immediate')) {
      throw new StrataError('InvalidArgument', '--target-exclusive needs --target-time, --target-xid, --target-lsn or --target-name');
    }
    if (f['target-timeline'] && !/^(latest|current|\d+)$/.test(f['target-timeline'])) {
      throw new StrataError('InvalidArgument', `--target-timeline "${f['target-timeline']}" must be latest, current or a timeline number`);
    }
    const maxRate = f['max-rate'] === undefined ? undefined : parseRate(f['max-rate']);
    const { loaded, clusterName, cluster, repo } = await this.context();
    await assertCanDecrypt(loaded.config, loaded.path, loaded.dir, f.repo, this.logger);
    const progress = this.progress(f.delta ? 'delta restore' : 'restore');
    const result = await runRestore({
      repo,
      clusterName,
      pgdata: f.pgdata ?? cluster.pgdata,
      label: f.set,
      target,
      targetAction: f['target-action'],
      targetExclusive: f['target-exclusive'],
      targetTimeline: f['target-timeline'],
      archiveMode: f['archive-mode'],
      delta: f.delta,
      force: f.force,
      restoreCommand: f['restore-command'] ?? `${strataCommandPrefix()} archive-get ${contextFlags(loaded.path, clusterName)} %f "%p"`,
      tablespaceMap: parseTablespaceMap(f['tablespace-map'] ?? []),
      logger: this.logger,
      processMax: f['process-max'] ?? loaded.config.restore.processMax,
      maxRate: maxRate ?? loaded.config.restore.maxRate,
      onProgress: (p) => progress.update(p.bytes, p.totalBytes),
    }).finally(() => progress.done());
    this.log(
      `Restored backup ${result.label} into ${result.pgdata}: ${result.files} files, ${fmtBytes(result.bytes)} (fetched ${fmtBytes(result.bytesFetched)}), in ${(result.durationMs / 1000).toFixed(1)} s.`,
    );
    if (result.delta) {
      const d = result.delta;
      this.log(
        `Delta: ${d.kept} files kept, ${d.patched} patched, ${d.restored} restored whole, ${d.removed.length} removed; fetched ${fmtBytes(result.bytesFetched)}.`,
      );
    }
    this.log(`Recovery target: ${result.target}. Start PostgreSQL on ${result.pgdata} to replay WAL from the repository.`);
    // Reads another copy served because the preferred one lacked an object, was down or damaged.
    const fallbacks = repo instanceof ReplicatedRepository ? repo.fallbacks : [];
    for (const f of fallbacks) this.warnUser(`read ${f.key} from repository "${f.to}": repository "${f.from}" failed (${f.reason})`);
    return { ...result, fallbacks };
  }
}

function parseTablespaceMap(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1)
      throw new StrataError('InvalidArgument', `--tablespace-map "${item}" must look like OID=DIR or NAME=DIR`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
