import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFastArgv } from './fastPath.js';
import { readCachedTarget, writeCachedTarget } from './targetCache.js';
import { PUSHER_COMMAND, pusherArgv, type AsyncTarget } from './asyncClient.js';

describe('parseFastArgv', () => {
  it('parses what archive_command and restore_command pass, in any order and both flag spellings', () => {
    expect(parseFastArgv(['archive-push', 'pg_wal/000000010000000000000001', '--config', '/etc/s.yaml', '--cluster=main'], {})).toEqual({
      id: 'archive-push',
      flags: { config: '/etc/s.yaml', cluster: 'main', repo: undefined, 'log-level': 'warn' },
      json: false,
      args: ['pg_wal/000000010000000000000001'],
    });
    expect(
      parseFastArgv(['archive-get', '--repo', 'r2', '--log-level=debug', '--json', '000000010000000000000001', 'pg_wal/RECOVERYXLOG'], {}),
    ).toEqual({
      id: 'archive-get',
      flags: { config: undefined, cluster: undefined, repo: 'r2', 'log-level': 'debug' },
      json: true,
      args: ['000000010000000000000001', 'pg_wal/RECOVERYXLOG'],
    });
  });

  it('takes --spool (bin/strata-archive-push passes it) for archive-push only', () => {
    expect(parseFastArgv(['archive-push', '--spool', '/var/spool/strata/main/local/archive-push', 'pg_wal/x'], {})?.flags.spool).toBe(
      '/var/spool/strata/main/local/archive-push',
    );
    expect(parseFastArgv(['archive-push', 'pg_wal/x'], {})?.flags).not.toHaveProperty('spool');
    expect(parseFastArgv(['archive-get', '--spool', '/s', '000000010000000000000001', 'pg_wal/RECOVERYXLOG'], {})).toBeUndefined();
  });

  it('turns --json on from STRATA_CONTENT_TYPE=json, as oclif does', () => {
    expect(parseFastArgv(['archive-push', 'x'], { STRATA_CONTENT_TYPE: 'JSON' })?.json).toBe(true);
  });

  it.each([
    [['archive-push', '--help']],
    [['archive-push', 'x', '-h']],
    [['archive-push', 'x', '--bogus']],
    [['archive-push', 'x', '--config']],
    [['archive-push', 'x', '--config', '--json']],
    [['archive-push', 'x', '--config=']],
    [['archive-push', 'x', '--config', 'a', '--config', 'b']],
    [['archive-push', 'x', '--json', '--json']],
    [['archive-push', 'x', '--log-level', 'loud']],
    [['archive-push']],
    [['archive-push', 'x', 'y']],
    [['archive-push', '--', 'x']],
    [['archive-get', 'x']],
    [['backup', '--type', 'full']],
    [[]],
  ])('leaves %j to oclif (its messages and exit codes)', (argv) => {
    expect(parseFastArgv(argv, {})).toBeUndefined();
  });
});

describe('target cache', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-target-cache-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { XDG_CACHE_HOME: path.join(dir, 'cache') };
  const config = path.join(dir, 'strata.yaml');
  const target: AsyncTarget = {
    configPath: config,
    clusterName: 'main',
    spoolDir: '/spool/main/local/archive-push',
    timeoutSeconds: 60,
    processMax: 3,
  };

  it('serves the target only while the config file is unchanged, and only for the same flags', () => {
    const text = 'archive: { async: true }\n';
    fs.writeFileSync(config, text);
    const flags = { config };
    expect(readCachedTarget(flags, env)).toBeUndefined();
    writeCachedTarget(flags, target, text, env);
    expect(readCachedTarget(flags, env)).toEqual(target);
    expect(readCachedTarget({ config, cluster: 'other' }, env)).toBeUndefined();
    expect(readCachedTarget({ config, repo: 'r2' }, env)).toBeUndefined();
    // Edited, even to the same length in the same instant: the entry no longer applies.
    fs.writeFileSync(config, 'archive: { async: false}\n');
    expect(readCachedTarget(flags, env)).toBeUndefined();
  });

  it('never copies the config text (it may hold secrets) into the cache', () => {
    const text = 'repos:\n  - { name: s3, plugin: s3, secretAccessKey: s3cr3t-K3y }\narchive: { async: true }\n';
    fs.writeFileSync(config, text);
    writeCachedTarget({ config }, target, text, env);
    const files = fs.readdirSync(path.join(env.XDG_CACHE_HOME, 'strata'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(fs.readFileSync(path.join(env.XDG_CACHE_HOME, 'strata', f), 'utf8')).not.toContain('s3cr3t');
    expect(readCachedTarget({ config }, env)).toEqual(target);
  });

  it('serves the entry an archive-push wrote to the pusher it starts (which then skips the config)', () => {
    const text = 'archive: { async: true, processMax: 3 }\n';
    fs.writeFileSync(config, text);
    for (const clientFlags of [{ config }, { config, cluster: 'main' }, { config, repo: 'r1', 'log-level': 'debug' as const }]) {
      const client: AsyncTarget = { ...target, repo: clientFlags.repo };
      writeCachedTarget(clientFlags, client, text, env);
      const pusher = parseFastArgv(pusherArgv(client, clientFlags, '/pg/pg_wal'), {});
      expect(pusher?.id).toBe(PUSHER_COMMAND);
      expect(pusher?.args).toEqual(['/pg/pg_wal']);
      expect(readCachedTarget(pusher!.flags, env)).toEqual(client);
    }
  });

  it('ignores an entry of the previous format (no processMax)', () => {
    const text = 'archive: { async: true }\n';
    fs.writeFileSync(config, text);
    writeCachedTarget({ config }, target, text, env);
    expect(readCachedTarget({ config }, env)).toEqual(target);
    const cacheDir = path.join(env.XDG_CACHE_HOME, 'strata');
    for (const file of fs.readdirSync(cacheDir)) {
      const entry = JSON.parse(fs.readFileSync(path.join(cacheDir, file), 'utf8')) as { version: number; target: Partial<AsyncTarget> };
      delete entry.target.processMax;
      fs.writeFileSync(path.join(cacheDir, file), JSON.stringify({ ...entry, version: 1 }));
    }
    expect(readCachedTarget({ config }, env)).toBeUndefined();
  });

  it('only costs speed when the cache cannot be written', () => {
    fs.writeFileSync(config, 'x');
    const blocked = { XDG_CACHE_HOME: path.join(config, 'not-a-dir') };
    expect(() => writeCachedTarget({ config }, target, 'x', blocked)).not.toThrow();
    expect(readCachedTarget({ config }, blocked)).toBeUndefined();
  });
});
