import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeScratchDir, runCommand, stopAllClusters } from './harness/postgres.js';
import { runStrata, writeStrataConfig } from './harness/strata.js';

afterAll(() => stopAllClusters());

/** systemd-analyze comes with Debian's systemd package (.ci/run installs it). */
function systemdAnalyze(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).trim();
  } catch {
    if (process.getuid?.() !== 0) throw new Error('systemd-analyze is missing: apt-get install systemd');
    execFileSync(
      'sh',
      [
        '-c',
        'apt-get install -y -qq --no-install-recommends systemd || (apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd)',
      ],
      {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
    return execFileSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).trim();
  }
}

describe('strata service install', () => {
  it('--dry-run prints a hardened unit that systemd-analyze verify accepts', async () => {
    const dir = makeScratchDir('strata-e2e-service-').dir;
    const config = path.join(dir, 'strata.yaml');
    const pgdata = path.join(dir, 'pg data');
    writeStrataConfig(config, { dataDir: pgdata, socketDir: '/var/run/postgresql', port: 5432 }, path.join(dir, 'repo'), {
      agent: { metrics: { listen: '127.0.0.1:9187' } },
    });
    const res = await runStrata(['service', 'install', '--dry-run', '--user', 'postgres'], { config, asPostgres: false });
    expect(res.code, res.stderr).toBe(0);
    const unit = res.stdout;
    for (const line of [
      'User=postgres',
      'ProtectSystem=strict',
      'NoNewPrivileges=yes',
      'Restart=on-failure',
      'KillMode=mixed',
      'CapabilityBoundingSet=',
      `ReadWritePaths=-"${pgdata}"`,
      `ReadWritePaths=-${path.join(dir, 'repo')}`,
      `ReadWritePaths=-${path.join(dir, 'state')}`,
      'ReadWritePaths=-/var/run/postgresql',
      'ExecReload=/bin/kill -HUP $MAINPID',
    ])
      expect(unit.split('\n')).toContain(line);
    expect(unit).toMatch(
      new RegExp(`^ExecStart=${process.execPath}( --\\S+)* \\S+/packages/agent/bin/run\\.js agent --config ${config}$`, 'm'),
    );

    const unitFile = path.join(dir, 'strata-agent.service');
    fs.writeFileSync(unitFile, unit);
    const verify = await runCommand(systemdAnalyze(), ['verify', unitFile], { timeoutMs: 60_000 });
    expect(`${verify.code} ${verify.stderr}${verify.stdout}`.trim()).toBe('0');

    // Not root: a real install refuses with the fix; --json carries the unit and the commands.
    const json = await runStrata(['service', 'install', '--dry-run', '--json'], { config, asPostgres: false });
    const r = (json.json as { result: { unit: string; commands: string[]; written: boolean } }).result;
    expect(r.written).toBe(false);
    expect(r.unit).toBe(unit);
    expect(r.commands).toContain('systemctl enable --now strata-agent.service');
    if (process.getuid?.() === 0) {
      const asPg = await runStrata(['service', 'install'], { config, asPostgres: true });
      expect(asPg.code).toBe(7);
      expect(asPg.stderr).toContain('needs root');
    }
    const noUser = await runStrata(['service', 'install', '--dry-run', '--user', 'no-such-user-x'], { config, asPostgres: false });
    expect(noUser.code).toBe(2);
    expect(noUser.stderr).toContain('there is no OS user "no-such-user-x"');
  });
});
