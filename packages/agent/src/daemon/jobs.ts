import type { JobKind } from './state.js';

/** The strata command line each scheduled job runs, as a child process of the agent. */
export function jobArgs(kind: JobKind, opts: { startFast: boolean }): string[] {
  switch (kind) {
    case 'full':
    case 'incr':
    case 'diff':
      return ['backup', '--type', kind, ...(opts.startFast ? ['--start-fast'] : [])];
    case 'expire':
      return ['expire'];
    case 'verify':
      return ['verify'];
    case 'restoreTest':
      return ['restore-test'];
    case 'replicate':
      return ['replicate'];
    case 'check':
      // A scheduled check reads the repositories; it does not force WAL switches on the cluster.
      return ['check', '--no-archive-check'];
  }
}
