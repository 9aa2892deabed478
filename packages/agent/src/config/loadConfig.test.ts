import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '@strata/core';
import { validateSchedules } from '../daemon/Agent.js';
import { DEFAULT_CONFIG_PATH, configPath, loadConfig, selectCluster } from './loadConfig.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

async function failure(p: Promise<unknown>): Promise<StrataError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isStrataError(err)) throw new Error(`expected a StrataError, got ${String(err)}`);
  return err;
}

const minimal = `clusters:\n  main:\n    pgdata: /pg\nrepos:\n  - name: local\n    plugin: fs\n    path: /repo\n`;

describe('configPath', () => {
  it('prefers --config, then STRATA_CONFIG, then /etc/strata/strata.yaml', () => {
    expect(configPath('/a.yaml', { STRATA_CONFIG: '/b.yaml' })).toBe('/a.yaml');
    expect(configPath(undefined, { STRATA_CONFIG: '/b.yaml' })).toBe('/b.yaml');
    expect(configPath(undefined, {})).toBe(DEFAULT_CONFIG_PATH);
  });
});

describe('loadConfig', () => {
  it('fills defaults', async () => {
    const { config } = await loadConfig(write('ok.yaml', minimal));
    expect(config.clusters.main).toEqual({
      pgdata: '/pg',
      host: '/var/run/postgresql',
      port: 5432,
      user: 'postgres',
      database: 'postgres',
      rehearsal: { checks: [], countTables: 5, amcheck: true, timeout: 600 },
      schedule: {},
    });
    expect(config.agent).toEqual({ stopTimeout: 120, startFast: false, jobLogLevel: 'warn' });
    expect(config.stateDir).toBeUndefined();
    expect(config.compression).toEqual({ plugin: 'zstd', level: 3 });
    expect(config.archive.timeout).toBe(120);
    expect(config.backup).toEqual({ superBlockSize: 1024 * 1024, packSize: 16 * 1024 * 1024 });
    expect(config.retention).toEqual({});
  });

  it('reads schedules, rehearsal checks and the agent section, and names bad keys', async () => {
    const withCluster = (extra: string, top = '') => minimal.replace(/(  main:\n(?:    .*\n)*)/, `$1${extra}`) + top;
    const ok = await loadConfig(
      write(
        'agent.yaml',
        withCluster(
          '    schedule: { full: "0 2 * * 0", restoreTest: "*/5 * * * * *" }\n    rehearsal: { checks: [{ name: n, sql: "select 1", expect: 1 }] }\n',
          'agent: { metrics: { listen: "127.0.0.1:9187" } }\nstateDir: /srv/state\n',
        ),
      ),
    );
    expect(ok.config.clusters.main!.schedule).toEqual({ full: '0 2 * * 0', restoreTest: '*/5 * * * * *' });
    expect(ok.config.clusters.main!.rehearsal.checks).toEqual([{ name: 'n', sql: 'select 1', expect: '1' }]);
    expect(ok.config.agent.metrics).toEqual({ listen: '127.0.0.1:9187' });
    expect(ok.config.stateDir).toBe('/srv/state');
    expect(() => validateSchedules(ok.config)).not.toThrow();

    const bad = await failure(
      loadConfig(
        write('agent-bad.yaml', withCluster('    schedule: { weekly: "0 2 * * 0" }\n', 'agent: { metrics: { listen: "0.0.0.0:9187" } }\n')),
      ),
    );
    expect(bad.code).toBe('ConfigInvalid');
    expect(bad.message).toMatch(/clusters\.main\.schedule: .*weekly/);
    expect(bad.message).toMatch(/agent\.metrics\.listen: use a loopback address/);

    const cron = await loadConfig(write('cron-bad.yaml', withCluster('    schedule: { incr: "61 * * * *" }\n')));
    const err = (() => {
      try {
        validateSchedules(cron.config);
      } catch (e) {
        return e as StrataError;
      }
      throw new Error('validateSchedules accepted "61 * * * *"');
    })();
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toContain('clusters.main.schedule.incr: "61 * * * *" is not a cron expression');
  });

  it('reads retention and refuses bad retention values', async () => {
    const ok = await loadConfig(write('retention.yaml', minimal + 'retention: { full: 2, diff: 3, fullDays: 7.5 }\n'));
    expect(ok.config.retention).toEqual({ full: 2, diff: 3, fullDays: 7.5 });
    const err = await failure(
      loadConfig(write('retention-bad.yaml', minimal + 'retention: { full: 0, diff: 1.5, fullDays: -1, days: 3 }\n')),
    );
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toMatch(/retention\.full: /);
    expect(err.message).toMatch(/retention\.diff: /);
    expect(err.message).toMatch(/retention\.fullDays: /);
    expect(err.message).toMatch(/retention: .*days/);
  });

  it('names a missing file and how to point at one', async () => {
    const err = await failure(loadConfig(path.join(dir, 'absent.yaml')));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('absent.yaml');
    expect(err.hint).toMatch(/--config PATH or STRATA_CONFIG/);
  });

  it('reports the line of a YAML syntax error', async () => {
    const err = await failure(loadConfig(write('bad.yaml', 'clusters:\n  main: [unclosed\n')));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toMatch(/not valid YAML at line \d/);
  });

  it('reports the path of every bad key or value', async () => {
    const text =
      minimal.replace('    pgdata: /pg\n', '    pgdata: /pg\n    port: 99999\n    colour: blue\n') + 'backup: { superBlockSize: 1000 }\n';
    const err = await failure(loadConfig(write('keys.yaml', text)));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toMatch(/clusters\.main\.port: /);
    expect(err.message).toMatch(/clusters\.main: .*colour/);
    expect(err.message).toMatch(/backup\.superBlockSize: /);
  });

  it('refuses duplicate repository names and cluster names that cannot be keys', async () => {
    const dup = minimal + `  - name: local\n    plugin: fs\n    path: /other\n`;
    expect((await failure(loadConfig(write('dup.yaml', dup)))).message).toMatch(/repos\[1\]\.name: duplicate repository name "local"/);
    const badName = minimal.replace('  main:', '  "a/b":');
    expect((await failure(loadConfig(write('name.yaml', badName)))).message).toMatch(/clusters\.a\/b|clusters: /);
  });
});

describe('selectCluster', () => {
  it('picks the only cluster, or the named one, and lists names otherwise', async () => {
    const one = (await loadConfig(write('one.yaml', minimal))).config;
    expect(selectCluster(one, undefined).name).toBe('main');
    const two = (await loadConfig(write('two.yaml', minimal.replace('repos:', '  other:\n    pgdata: /pg2\nrepos:')))).config;
    expect(() => selectCluster(two, undefined)).toThrow(/several clusters are configured \(main, other\): say which with --cluster/);
    expect(selectCluster(two, 'other').cluster.pgdata).toBe('/pg2');
    expect(() => selectCluster(two, 'nope')).toThrow(/no cluster "nope" in the config; configured: main, other/);
  });
});
