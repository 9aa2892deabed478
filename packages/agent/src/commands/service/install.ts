import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { Flags } from '@oclif/core';
import { StrataError, resolveStateDir } from '@strata/core';
import { BaseCommand } from '../../BaseCommand.js';
import { BIN, nodeFlags } from '../../self.js';
import { UNIT_NAME, UNIT_PATH, renderUnit } from '../../service/unit.js';

const run = promisify(execFile);

export interface ServiceInstallResult {
  unitPath: string;
  written: boolean;
  unit: string;
  commands: string[];
}

export default class ServiceInstall extends BaseCommand<typeof ServiceInstall> {
  static override summary = 'Install the agent as a hardened systemd service.';
  static override description = `Writes ${UNIT_PATH} running "strata agent" with this config as --user (default postgres): ProtectSystem=strict with ReadWritePaths for the data directories, fs repositories, state and scratch directories, NoNewPrivileges, no capabilities, Restart=on-failure, and SIGTERM to the agent only (it stops its jobs cleanly). Prints the systemctl commands that enable it. --dry-run prints the unit instead.`;
  static override examples = ['<%= config.bin %> service install --dry-run', 'sudo <%= config.bin %> service install --user postgres'];
  static override flags = {
    'dry-run': Flags.boolean({ default: false, description: 'print the unit, write nothing' }),
    user: Flags.string({ default: 'postgres', description: 'OS user the agent runs as (the user that owns the data directory)' }),
  };

  async run(): Promise<ServiceInstallResult> {
    const loaded = await this.loadConfig();
    const user = this.flags.user;
    let group: string;
    try {
      group = (await run('id', ['-gn', user])).stdout.trim();
    } catch (err) {
      throw new StrataError('InvalidArgument', `there is no OS user "${user}"`, {
        cause: err,
        hint: 'name the user PostgreSQL runs as with --user',
      });
    }
    const unit = renderUnit({
      config: loaded.config,
      configFile: loaded.path,
      user,
      group,
      strata: [process.execPath, ...nodeFlags(), BIN],
      stateDir: loaded.config.stateDir ?? process.env.STRATA_STATE_DIR ?? '/var/lib/strata/state',
    });
    const commands = ['systemctl daemon-reload', `systemctl enable --now ${UNIT_NAME}`, `journalctl -u ${UNIT_NAME} -f`];
    if (this.flags['dry-run']) {
      process.stdout.write(this.jsonEnabled() ? '' : unit);
      return { unitPath: UNIT_PATH, written: false, unit, commands };
    }
    if (process.getuid?.() !== 0) {
      throw new StrataError('PermissionDenied', `writing ${UNIT_PATH} needs root`, {
        hint: 'run it with sudo, or use --dry-run and install the unit yourself',
      });
    }
    if (!loaded.config.stateDir) {
      // The default state directory must exist for the unit's ReadWritePaths, owned by the agent's user.
      const dir = await resolveStateDir(undefined);
      await run('chown', [`${user}:${group}`, dir]);
    }
    await fs.writeFile(`${UNIT_PATH}.tmp`, unit, { mode: 0o644 });
    await fs.rename(`${UNIT_PATH}.tmp`, UNIT_PATH);
    this.log(`Wrote ${UNIT_PATH}. Enable and start it with:\n${commands.map((c) => `  ${c}`).join('\n')}`);
    return { unitPath: UNIT_PATH, written: true, unit, commands };
  }
}
