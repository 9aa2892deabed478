/** One check the rehearsal ran on the recovered cluster. */
export interface RehearsalCheck {
  name: string;
  /** recovery | amcheck | sql | wal */
  kind: string;
  passed: boolean;
  /** Not run (e.g. pg_amcheck not installed); does not fail the rehearsal. */
  skipped?: boolean;
  detail: string;
}

/** What `strata restore-test` found; stored in the repository (docs/format.md). */
export interface RehearsalResult {
  format: 1;
  cluster: string;
  repo: string;
  /** The backup restored (absent when none could be chosen). */
  label?: string;
  passed: boolean;
  /** Why it failed, when it did. */
  error?: string;
  startedAt: string;
  finishedAt: string;
  /** Seconds from the start of the rehearsal until the promoted cluster answered queries. */
  rtoSeconds?: number;
  /**
   * Seconds between the moment the rehearsal read the archive and the last transaction recovery
   * replayed: the committed work a loss of the primary at that moment would have cost.
   */
  rpoSeconds?: number;
  /** Commit time of the last transaction replayed (pg_last_xact_replay_timestamp), else the backup's stop time. */
  recoveredTo?: string;
  /** The newest WAL segment in the archive when the rehearsal began. */
  newestSegment?: string;
  /** Where recovery ended (the new timeline's switch point). */
  recoveryEndLsn?: string;
  pgVersion?: number;
  checks: RehearsalCheck[];
  /** Exact row counts of the largest tables. */
  tables: { name: string; rows: number }[];
  durationSeconds: number;
}
