import * as fs from 'node:fs/promises';
import { StrataError } from '@strata/core';
import { BaseCommand } from '../../BaseCommand.js';
import { UNIT_NAME, UNIT_PATH } from '../../service/unit.js';

export default class ServiceUninstall extends BaseCommand<typeof ServiceUninstall> {
  static override summary = 'Remove the agent service unit.';
  static override description = `Removes ${UNIT_PATH} and prints the systemctl commands that stop and disable the service. Backups, repositories and the state directory are left alone.`;
  static override examples = ['sudo <%= config.bin %> service uninstall'];

  async run(): Promise<{ unitPath: string; removed: boolean; commands: string[] }> {
    const commands = [`systemctl disable --now ${UNIT_NAME}`, 'systemctl daemon-reload'];
    try {
      await fs.unlink(UNIT_PATH);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.log(`${UNIT_PATH} is not installed.`);
        return { unitPath: UNIT_PATH, removed: false, commands: [] };
      }
      throw new StrataError('PermissionDenied', `cannot remove ${UNIT_PATH}: ${(err as Error).message}`, {
        cause: err,
        hint: 'run it with sudo',
      });
    }
    this.log(`Removed ${UNIT_PATH}. Stop the running service with:\n${commands.map((c) => `  ${c}`).join('\n')}`);
    return { unitPath: UNIT_PATH, removed: true, commands };
  }
}
