import { StrataError, isStale, processStartTime, resolveStateDir } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { readAgentState, stateFile, type AgentState } from '../daemon/state.js';
import { fmtBytes } from './backup.js';

export interface StatusResult extends AgentState {
  /** Whether the agent that wrote the file is still running. */
  agentRunning: boolean;
}

export default class Status extends BaseCommand<typeof Status> {
  static override summary = "Show the agent's jobs: schedules, last results, next runs, last backups and rehearsal.";
  static override description =
    'Reads the job-state file the agent keeps in the state directory (stateDir, default /var/lib/strata/state).';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];

  async run(): Promise<StatusResult> {
    const loaded = await this.loadConfig();
    const dir = await resolveStateDir(loaded.config.stateDir);
    const state = await readAgentState(dir);
    if (!state) {
      throw new StrataError('NotFound', `no agent state in ${stateFile(dir)}: the agent has not run with this state directory`, {
        hint: 'start it with "strata agent" (or "strata service install"), with the same stateDir',
      });
    }
    const agentRunning =
      !state.stoppedAt &&
      !isStale({
        pid: state.pid,
        hostname: state.hostname,
        processStart: processStartTime(state.pid) ?? null,
        job: 'agent',
        acquiredAt: '',
      });
    this.log(
      `Agent pid ${state.pid} on ${state.hostname}: ${agentRunning ? 'running' : state.stoppedAt ? `stopped at ${state.stoppedAt}` : 'not running (it did not stop cleanly)'}; started ${state.startedAt}, config ${state.config}`,
    );
    for (const [cluster, cs] of Object.entries(state.clusters)) {
      this.log(
        `Cluster ${cluster}${cs.running && agentRunning ? `: running ${cs.running.job} (pid ${cs.running.pid}) since ${cs.running.startedAt}` : ''}`,
      );
      for (const [job, js] of Object.entries(cs.jobs)) {
        const last = js.last
          ? `last ${js.last.outcome} at ${js.last.finishedAt}${js.last.message ? ` (${js.last.message.split('\n')[0]})` : ''}`
          : 'not run yet';
        this.log(
          `  ${job.padEnd(11)} "${js.schedule}"  next ${agentRunning ? (js.nextRun ?? '-') : '-'}  ${last}  [ok ${js.runs.succeeded}, failed ${js.runs.failed}, skipped ${js.runs.skipped}]`,
        );
      }
      for (const [type, b] of Object.entries(cs.lastBackup))
        this.log(
          `  last ${type} backup ${b.label} at ${b.finishedAt}: ${fmtBytes(b.bytes)} → ${fmtBytes(b.repoBytes)} stored, ${b.durationSeconds.toFixed(1)} s`,
        );
      const r = cs.lastRehearsal;
      if (r)
        this.log(
          `  last rehearsal at ${r.finishedAt}: ${r.passed ? 'PASSED' : 'FAILED'}${r.rtoSeconds !== undefined ? `, RTO ${r.rtoSeconds.toFixed(1)} s` : ''}${r.rpoSeconds !== undefined ? `, RPO ${r.rpoSeconds.toFixed(1)} s` : ''}${r.error ? ` (${r.error.split('\n')[0]})` : ''}`,
        );
      const c = cs.lastCheck;
      if (c) {
        const lagging = c.repositories
          .filter((x) => !x.reachable || !x.level)
          .map((x) => (x.reachable ? `${x.repo} lags` : `${x.repo} unreachable`));
        this.log(
          `  last check at ${c.finishedAt}: 3-2-1 ${c.rule321 ? 'met' : 'NOT met'} (${c.copies} copies, ${c.mediaKinds} media, ${c.offsiteCopies} offsite)${lagging.length ? `; ${lagging.join(', ')}` : ''}`,
        );
      }
    }
    return { ...state, agentRunning };
  }
}
