import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, chownToPostgres, makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { runStrata, writeStrataConfig } from './harness/strata.js';

afterAll(() => stopAllClusters(), 120_000);

describe('strata init (PostgreSQL 15)', () => {
  it('says exactly what to set when archiving is not configured, and backup refuses until it is', async () => {
    const scratch = makeScratchDir('strata-e2e-init-').dir;
    const config = path.join(scratch, 'strata.yaml');
    const pg = await PgCluster.init({ version: 15, settings: { archive_mode: 'off' } });
    writeStrataConfig(config, pg, path.join(scratch, 'repo'));
    chownToPostgres(config);
    await pg.start({ waitForPromotion: true });

    const human = await runStrata(['init'], { config });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/initialised in repository "local"/);
    expect(human.stdout).toContain("ALTER SYSTEM SET archive_mode = 'on';");
    expect(human.stdout).toMatch(/ALTER SYSTEM SET archive_command = '.*archive-push --config .*strata\.yaml --cluster main %p';/);
    expect(human.stderr).toMatch(/archive_mode is "off"; set it to "on" \(needs a restart\)/);

    const again = await runStrata(['init', '--json'], { config });
    expect(again.code).toBe(0);
    const result = (again.json as { result: { status: string; settingsToFix: { name: string }[] } }).result;
    expect(result.status).toBe('exists');
    expect(result.settingsToFix.map((s) => s.name).sort()).toEqual(['archive_command', 'archive_mode']);

    const backup = await runStrata(['backup', '--start-fast'], { config });
    expect(backup.code).toBe(9);
    expect(backup.stderr).toMatch(/archive_mode is off .* cannot be restored/);
  });

  it('refuses to mix another cluster into a repository', async () => {
    const scratch = makeScratchDir('strata-e2e-init2-').dir;
    const repo = path.join(scratch, 'repo');
    const configs = [path.join(scratch, 'a.yaml'), path.join(scratch, 'b.yaml')];
    for (const config of configs) {
      const pg = await PgCluster.init({ version: 15 });
      writeStrataConfig(config, pg, repo);
      chownToPostgres(config);
      await pg.start({ waitForPromotion: true });
    }
    expect((await runStrata(['init'], { config: configs[0] })).code).toBe(0);
    const other = await runStrata(['init', '--json'], { config: configs[1] });
    expect(other.code).toBe(9);
    expect((other.json as { message: string }).message).toMatch(
      /holds cluster "main" with system identifier \d+, but this PostgreSQL cluster has \d+/,
    );
    expect(fs.readdirSync(path.join(repo, 'main'))).toEqual(['cluster.info']);
  });
});
