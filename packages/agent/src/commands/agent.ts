import { pino } from 'pino';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../BaseCommand.js';
import { configPath } from '../config/loadConfig.js';
import { Agent } from '../daemon/Agent.js';

export default class AgentCommand extends BaseCommand<typeof AgentCommand> {
  static override summary = 'Run the agent: scheduled backups, expiry, verification and restore rehearsals, with metrics.';
  static override description = `Runs in the foreground (for systemd: see "strata service install"). Schedules each cluster's jobs from clusters.<name>.schedule (cron syntax, optional seconds field) and runs each as a child strata process, never two at once on one cluster: a run that finds its cluster busy is skipped and recorded. Writes structured JSON logs (pino) to stdout and the job-state file <stateDir>/agent.json that "strata status" reads; serves Prometheus metrics when agent.metrics.listen is set (docs/metrics.md). SIGHUP reloads the config; SIGTERM or SIGINT stops scheduling, forwards SIGTERM to running jobs, waits for them (agent.stopTimeout) and exits.`;
  static override examples = ['<%= config.bin %> agent', '<%= config.bin %> agent --config /etc/strata/strata.yaml --log-level debug'];
  static override enableJsonFlag = false;
  static override flags = {
    'log-level': Flags.option({ options: ['error', 'warn', 'info', 'debug'] as const, default: 'info', helpGroup: 'GLOBAL' })(),
  };

  async run(): Promise<void> {
    const log = pino({ level: this.flags['log-level'], base: { cmd: 'agent' } }, pino.destination(1));
    const agent = new Agent(configPath(this.flags.config), log);
    await agent.run();
  }
}
