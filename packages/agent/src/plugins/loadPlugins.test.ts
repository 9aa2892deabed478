import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, isStrataError, noopLogger, validateConfig } from '@strata/core';
import { openRepository, pluginDataDir } from './loadPlugins.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-plugins-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function configWith(repo: Record<string, unknown>) {
  return validateConfig({ clusters: { main: { pgdata: '/pg' } }, repos: [{ name: 'r', ...repo }] }, 'test.yaml');
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isStrataError(err)) throw new Error(`expected a StrataError, got ${String(err)}`);
  return err;
}

/** A third-party plugin module on disk, built against `version` of the contract. */
function pluginFile(name: string, version: number, kind = 'storage'): string {
  const file = path.join(dir, `${name}.mjs`);
  fs.writeFileSync(
    file,
    `export default { name: '${name}', kind: '${kind}', contractVersion: ${version},
       configSchema: { safeParse: (d) => ({ success: true, data: d }) },
       create: () => ({ capabilities: {}, describe: () => '${name}' }) };\n`,
  );
  return file;
}

describe('openRepository', () => {
  it('opens the built-in fs plugin with its options', async () => {
    const repo = await openRepository(configWith({ plugin: 'fs', path: 'repo' }), 'test.yaml', dir, undefined, noopLogger);
    expect(repo.describe()).toBe(`repository "r" (fs:${path.join(dir, 'repo')})`);
  });

  it('opens the built-in gcs plugin by its short name and checks its options', async () => {
    const repo = await openRepository(
      configWith({ plugin: 'gcs', bucket: 'acme-backups', prefix: 'pg/main', apiEndpoint: 'http://127.0.0.1:9' }),
      'test.yaml',
      dir,
      undefined,
      noopLogger,
    );
    expect(repo.describe()).toBe('repository "r" (gs://acme-backups/pg/main (endpoint http://127.0.0.1:9))');
    const err = await failure(openRepository(configWith({ plugin: 'gcs', bucket: 'gs://acme' }), 'test.yaml', dir, undefined, noopLogger));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toMatch(/repos\[0\]\.bucket: give the bucket name without "gs:\/\/"/);
  });

  it("validates the plugin's own options with their path", async () => {
    const err = await failure(openRepository(configWith({ plugin: 'fs', path: '/x', bogus: 1 }), 'test.yaml', dir, undefined, noopLogger));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toMatch(/repos\[0\]: .*bogus/);
  });

  it('loads a third-party plugin by path and refuses one built for another contract version', async () => {
    const ok = await openRepository(configWith({ plugin: pluginFile('good', CONTRACT_VERSION) }), 'test.yaml', dir, undefined, noopLogger);
    expect(ok.describe()).toContain('good');
    const err = await failure(
      openRepository(configWith({ plugin: pluginFile('old', CONTRACT_VERSION + 1) }), 'test.yaml', dir, undefined, noopLogger),
    );
    expect(err.message).toBe(
      `plugin "${path.join(dir, 'old.mjs')}" was built for plugin contract ${CONTRACT_VERSION + 1}, this Strata speaks contract ${CONTRACT_VERSION}`,
    );
  });

  it('says how to install a plugin that is not there, and refuses the wrong kind', async () => {
    const missing = await failure(openRepository(configWith({ plugin: 'strata-plugin-nowhere' }), 'test.yaml', dir, undefined, noopLogger));
    expect(missing.message).toMatch(/cannot load storage plugin "strata-plugin-nowhere"/);
    const wrongKind = await failure(
      openRepository(
        configWith({ plugin: pluginFile('squash', CONTRACT_VERSION, 'compression') }),
        'test.yaml',
        dir,
        undefined,
        noopLogger,
      ),
    );
    expect(wrongKind.message).toMatch(/is a compression plugin, configured as storage/);
  });

  it('names the configured repositories when --repo is unknown', async () => {
    const err = await failure(openRepository(configWith({ plugin: 'fs', path: '/x' }), 'test.yaml', dir, 'nope', noopLogger));
    expect(err.message).toBe('no repository "nope" in the config; configured: r');
  });
});

describe('plugins installed with "strata plugins install"', () => {
  it('are looked for where oclif installs them', async () => {
    const { Config } = await import('@oclif/core');
    const agentRoot = path.resolve(import.meta.dirname, '..', '..');
    for (const env of [{}, { XDG_DATA_HOME: '/xdg' }, { STRATA_DATA_DIR: '/custom' }]) {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        const config = await Config.load(agentRoot);
        expect(pluginDataDir()).toBe(config.dataDir);
      } finally {
        for (const k of Object.keys(env)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    }
  });

  it('are loaded by package name from the data directory', async () => {
    const data = path.join(dir, 'data');
    const pkg = path.join(data, 'node_modules', 'strata-plugin-installed');
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(
      path.join(pkg, 'package.json'),
      JSON.stringify({ name: 'strata-plugin-installed', type: 'module', exports: './index.js' }),
    );
    fs.copyFileSync(pluginFile('installed', CONTRACT_VERSION), path.join(pkg, 'index.js'));
    process.env.STRATA_DATA_DIR = data;
    try {
      const repo = await openRepository(configWith({ plugin: 'strata-plugin-installed' }), 'test.yaml', dir, undefined, noopLogger);
      expect(repo.describe()).toBe('repository "r" (installed)');
    } finally {
      delete process.env.STRATA_DATA_DIR;
    }
  });
});
