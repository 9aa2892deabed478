import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress } from 'zstd-napi';
import { chownToPostgres, makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { runStrata, writeStrataConfig, type StrataResult } from './harness/strata.js';
import { repoObjectFiles } from './scenarios/repository.js';
import { StrataCluster, chownRecursive, restoreInto, secondsBefore } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Key {
  fingerprint: string;
  pub: string;
  priv: string;
}

async function makeKey(dir: string, name: string, passphrase?: string): Promise<Key> {
  const { publicKey, privateKey } = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name, email: `${name}@example.invalid` }],
    passphrase,
    format: 'armored',
  });
  const pub = path.join(dir, `${name}.pub.asc`);
  const priv = path.join(dir, `${name}.key.asc`);
  fs.writeFileSync(pub, publicKey);
  fs.writeFileSync(priv, privateKey, { mode: 0o600 });
  chownToPostgres(pub);
  chownToPostgres(priv);
  return { fingerprint: (await openpgp.readKey({ armoredKey: publicKey })).getFingerprint().toUpperCase(), pub, priv };
}

/** Every place the marker shows: in clear, or inside a zstd frame starting at any offset. */
function markerHits(file: string, marker: Buffer): string[] {
  const data = fs.readFileSync(file);
  const hits: string[] = [];
  if (data.includes(marker)) hits.push(`${file}: in clear`);
  const magic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
  for (let at = data.indexOf(magic); at >= 0; at = data.indexOf(magic, at + 1)) {
    let plain: Buffer;
    try {
      plain = decompress(data.subarray(at));
    } catch {
      continue; // not a frame, or a damaged one: nothing readable there
    }
    if (plain.includes(marker)) hits.push(`${file}: in the zstd frame at ${at}`);
  }
  return hits;
}

function allFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? allFiles(p) : [p];
  });
}

function flipByte(file: string): void {
  const buf = fs.readFileSync(file);
  const i = Math.floor(buf.length / 2);
  buf[i] = buf[i]! ^ 0x5a;
  fs.writeFileSync(file, buf);
}

/**
 * Issue 6: a database host with only the public key backs up (full and incremental) and archives
 * WAL into an encrypted repository; restore needs the private key; tampering is detected; keys
 * rotate without rewriting data.
 */
describe('encrypted repository (OpenPGP, PostgreSQL 15)', () => {
  let base: string;
  let repoDir: string;
  let src: StrataCluster;
  let oldKey: Key;
  let newKey: Key;
  let stranger: Key;
  let newKeyPassFile: string;
  const newKeyPassphrase = `new-key-pass-${randomBytes(6).toString('hex')}`;
  const marker = `STRATA-MARKER-${randomBytes(8).toString('hex')}`;
  const labels: string[] = [];
  let expected: { id: number; note: string }[];
  let target: string;

  /** A config for the same cluster and repository, with this encryption section. */
  const config = (name: string, encryption: Record<string, unknown>): string => {
    const file = path.join(base, `${name}.yaml`);
    writeStrataConfig(file, src.pg, repoDir, { archive: { timeout: 60 } }, [
      { name: 'local', plugin: 'fs', path: repoDir, encryption: { plugin: 'encrypt-pgp', ...encryption } },
    ]);
    chownToPostgres(file);
    return file;
  };
  const restoreHostConfig = () => config('restore-host', { publicKeys: [oldKey.pub], privateKeys: [oldKey.priv] });

  beforeAll(async () => {
    base = makeScratchDir('strata-e2e-enc-').dir;
    repoDir = path.join(base, 'repo');
    fs.mkdirSync(repoDir);
    chownToPostgres(repoDir);
    [oldKey, newKey, stranger] = await Promise.all([
      makeKey(base, 'old'),
      makeKey(base, 'new', newKeyPassphrase),
      makeKey(base, 'stranger'),
    ]);
    newKeyPassFile = path.join(base, 'new-key.pass');
    fs.writeFileSync(newKeyPassFile, `${newKeyPassphrase}\n`, { mode: 0o600 });
    chownToPostgres(newKeyPassFile);
    // The database host: only the old public key; archive_command runs with this config.
    src = await StrataCluster.create({
      version: 15,
      repos: [{ name: 'local', plugin: 'fs', path: repoDir, encryption: { plugin: 'encrypt-pgp', publicKeys: [oldKey.pub] } }],
    });
    expect(fs.existsSync(path.join(repoDir, 'main', 'cluster.info'))).toBe(true);
  });

  it('backs up full and incremental and archives WAL on a host holding only the public key', async () => {
    const pg = src.pg;
    await pg.query(`CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL)`);
    await pg.query(`INSERT INTO notes (note) SELECT md5(g::text) FROM generate_series(1, 20000) g`);
    await pg.query(`INSERT INTO notes (note) VALUES ($1)`, [marker]);
    await pg.query('VACUUM (FREEZE, ANALYZE) notes');
    labels.push(await src.backup());
    await pg.query(`INSERT INTO notes (note) SELECT $1 || g FROM generate_series(1, 200) g`, [marker]);
    const incr = await src.strata(['backup', '--start-fast', '--json']);
    expect(incr.code, incr.stderr).toBe(0);
    const result = (incr.json as { result: { label: string; type: string; parent: string; note?: string } }).result;
    expect(result.type).toBe('incr');
    expect(result.parent).toBe(labels[0]);
    labels.push(result.label);

    // Without the host's local copy of its backups' metadata an incremental cannot be planned: a full, and why.
    const copies = path.join(src.scratch, 'state', 'encryption-cache', 'local', 'main');
    const incrCopies = fs.readdirSync(path.join(copies, 'backup', labels[1]!));
    expect(incrCopies.filter((n) => n.startsWith('manifest@'))).toHaveLength(1);
    for (const n of incrCopies.filter((n) => n.startsWith('manifest@')))
      expect(fs.statSync(path.join(copies, 'backup', labels[1]!, n)).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(copies, 'backup', labels[0]!, 'pack'))).toBe(false);
    fs.rmSync(path.join(copies, 'backup'), { recursive: true, force: true });
    const fallback = await src.strata(['backup', '--type', 'incr', '--start-fast', '--json']);
    expect(fallback.code, fallback.stderr).toBe(0);
    const fb = (fallback.json as { result: { label: string; type: string; note?: string } }).result;
    expect(fb.type).toBe('full');
    expect(fb.note).toContain(oldKey.fingerprint);
    expect(fb.note).toContain('public keys only');
    labels.push(fb.label);

    await pg.query(`INSERT INTO notes (note) SELECT 'late ' || g FROM generate_series(1, 300) g`);
    expected = await pg.query<{ id: number; note: string }>('SELECT id, note FROM notes ORDER BY id');
    await sleep(1100);
    const out = await pg.psql(`BEGIN; SELECT now()::text; DELETE FROM notes; COMMIT;`);
    target = await secondsBefore(pg, out.trim().split('\n')[0]!, 1);
    await src.switchWalAndWait();
  });

  it('stores no byte of the marker, in clear or zstd-decompressible, in any object (the scan finds it where it is)', () => {
    const needle = Buffer.from(marker);
    const files = allFiles(repoDir);
    expect(files.filter((f) => f.includes('/pack/')).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.includes('/wal/')).length).toBeGreaterThan(2);
    expect(files.flatMap((f) => markerHits(f, needle))).toEqual([]);
    // The scan is not blind: the marker is in the source's WAL in clear…
    const walHits = allFiles(path.join(src.pg.dataDir, 'pg_wal')).flatMap((f) =>
      f.includes('archive_status') ? [] : markerHits(f, needle),
    );
    expect(walHits.length).toBeGreaterThan(0);
  });

  it('restore on the public-key-only host fails before touching the target, naming the key needed', async () => {
    const { result, pgdata } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(2);
    const err = result.json as { name: string; message: string };
    expect(err.name).toBe('ConfigInvalid');
    expect(err.message).toContain(oldKey.fingerprint);
    expect(fs.existsSync(pgdata)).toBe(false);
  });

  it('restore with a wrong private key fails before touching the target, naming the key needed', async () => {
    const wrong = config('wrong-key', { publicKeys: [stranger.pub], privateKeys: [stranger.priv] });
    const { result, pgdata } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote'], { configPath: wrong });
    expect(result.code, result.stderr).toBe(2);
    const err = result.json as { name: string; message: string };
    expect(err.message).toContain(oldKey.fingerprint);
    expect(err.message).toContain(stranger.fingerprint);
    expect(fs.existsSync(pgdata)).toBe(false);
  });

  it('restores to a point in time with the private key', async () => {
    const { result, pg } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote'], {
      configPath: restoreHostConfig(),
    });
    expect(result.code, result.stderr).toBe(0);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect(await pg.query<{ id: number; note: string }>('SELECT id, note FROM notes ORDER BY id')).toEqual(expected);
    await pg.stop();
  });

  describe('tampering', () => {
    const cases: [string, RegExp][] = [
      ['pack', /backup\/\d{8}-\d{6}F\/pack\/000000$/],
      ['block map', /backup\/\d{8}-\d{6}F\/blockmap\/000000$/],
      ['manifest', /backup\/\d{8}-\d{6}F_\d{8}-\d{6}I\/manifest$/],
      ['WAL', /wal\/[0-9A-F]{16}\/[0-9A-F]{24}-[0-9a-f]{64}\.zst$/],
    ];
    it.each(cases)('a flipped byte in a %s is an integrity error naming the object', async (_kind, re) => {
      const objects = repoObjectFiles(repoDir);
      const key = objects.find((o) => re.test(o) && (_kind !== 'pack' && _kind !== 'block map' ? true : o.includes(labels[0]!)));
      expect(key, `no object matching ${re}`).toBeDefined();
      const copy = path.join(base, `damaged-${_kind.replace(/\W+/g, '-')}`);
      fs.cpSync(repoDir, copy, { recursive: true });
      chownRecursive(copy);
      flipByte(path.join(copy, key!));
      const cfg = path.join(base, `damaged-${_kind.replace(/\W+/g, '-')}.yaml`);
      writeStrataConfig(cfg, src.pg, copy, { archive: { timeout: 60 } }, [
        {
          name: 'local',
          plugin: 'fs',
          path: copy,
          encryption: { plugin: 'encrypt-pgp', publicKeys: [oldKey.pub], privateKeys: [oldKey.priv] },
        },
      ]);
      chownToPostgres(cfg);
      const verify = await runStrata(['verify', '--json'], { config: cfg });
      const found = (verify.json as { result?: { problems: { kind: string; object: string; detail: string }[] } }).result?.problems ?? [];
      expect(
        found.filter((p) => p.kind === 'corrupt').map((p) => p.object),
        verify.stdout + verify.stderr,
      ).toContain(key);
      if (_kind === 'pack' || _kind === 'block map') {
        const { result, pgdata } = await restoreInto(src, ['--set', labels[0]!, '--target-immediate', '--target-action', 'promote'], {
          configPath: cfg,
        });
        expect(result.code, result.stderr).toBe(5);
        expect((result.json as { name: string; message: string }).message).toContain(key);
        // Never startable (pg_control is written last), and nothing decrypted is left behind.
        expect(fs.existsSync(path.join(pgdata, 'global', 'pg_control'))).toBe(false);
        expect(fs.existsSync(pgdata) ? fs.readdirSync(pgdata) : []).toEqual([]);
      }
      if (_kind === 'WAL') {
        const walName = path.basename(key!).slice(0, 24);
        const got = await runStrata(['archive-get', walName, path.join(base, 'got-wal')], { config: cfg });
        expect(got.code).toBe(126);
        expect(got.stderr).toContain(key);
      }
    });
  });

  it('after key rotate and removing the old key, every backup and WAL segment restores with the new key only', async () => {
    const rotating = config('rotating', { publicKeys: [newKey.pub], privateKeys: [oldKey.priv] });
    const before = new Map(
      repoObjectFiles(repoDir)
        .filter((o) => !o.includes('/keyring/'))
        .map((o) => [o, fs.readFileSync(path.join(repoDir, o))]),
    );
    const rot = await runStrata(['key', 'rotate', '--json'], { config: rotating });
    expect(rot.code, rot.stderr).toBe(0);
    const [report] = (rot.json as { result: { rewrapped: number; dataKeys: number }[] }).result;
    expect(report!.rewrapped).toBe(report!.dataKeys);
    expect(report!.dataKeys).toBeGreaterThan(labels.length);
    // No data object was rewritten.
    for (const [o, bytes] of before) expect(fs.readFileSync(path.join(repoDir, o)).equals(bytes), o).toBe(true);

    const newOnly = config('new-only', {
      publicKeys: [newKey.pub],
      privateKeys: [newKey.priv],
      privateKeyPassphrase: { file: newKeyPassFile },
    });
    const verify = await runStrata(['verify', '--json', '--log-level', 'debug'], { config: newOnly, timeoutMs: 300_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const v = (verify.json as { result: { ok: boolean; backups: string[]; wal: { segments: number }[] } }).result;
    expect(v.ok).toBe(true);
    expect(v.backups).toEqual([...labels].sort());
    for (const out of [verify.stdout, verify.stderr]) {
      expect(out).not.toContain(newKeyPassphrase);
      expect(out).not.toContain('PRIVATE KEY BLOCK');
    }
    for (const label of labels) {
      const { result, pg } = await restoreInto(src, ['--set', label, '--target-immediate', '--target-action', 'promote'], {
        configPath: newOnly,
      });
      expect(result.code, result.stderr).toBe(0);
      if (label === labels[0]) {
        await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
        expect(Number((await pg.query<{ n: string }>('SELECT count(*) AS n FROM notes'))[0]!.n)).toBe(20001);
        await pg.stop();
      }
    }
    const { result, pg } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote', '--log-level', 'debug'], {
      configPath: newOnly,
    });
    expect(result.code, result.stderr).toBe(0);
    expectNoSecrets(result, newKeyPassphrase);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect(await pg.query<{ id: number; note: string }>('SELECT id, note FROM notes ORDER BY id')).toEqual(expected);
    await pg.stop();
  });

  it('a passphrase read from a command is in no process title, log or --json output, and alone opens the repository after rotation', async () => {
    const passphrase = `repo-pass-${randomBytes(6).toString('hex')}`;
    const passFile = path.join(base, 'repo.pass');
    fs.writeFileSync(passFile, `${passphrase}\n`, { mode: 0o600 });
    chownToPostgres(passFile);
    const withPassphrase = config('passphrase-rotate', {
      publicKeys: [newKey.pub],
      privateKeys: [newKey.priv],
      privateKeyPassphrase: { file: newKeyPassFile },
      // The command runs a while, so the scan below sees every process while the secret is in use.
      passphrase: { command: `sleep 1; cat ${passFile}` },
    });
    let done = false;
    const running = runStrata(['key', 'rotate', '--json', '--log-level', 'debug'], { config: withPassphrase }).finally(() => {
      done = true;
    });
    const titles = new Set<string>();
    while (!done) {
      for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (cmdline.includes('strata') || cmdline.includes(passFile)) titles.add(cmdline);
        } catch {
          // the process ended meanwhile
        }
      }
      await sleep(20);
    }
    const rot = await running;
    expect(rot.code, rot.stderr).toBe(0);
    expect([...titles].some((t) => t.includes('key\0rotate'))).toBe(true);
    expect([...titles].filter((t) => t.includes(passphrase))).toEqual([]);
    expectNoSecrets(rot, passphrase);
    expectNoSecrets(rot, newKeyPassphrase);
    const passphraseOnly = config('passphrase-only', { passphrase: { file: passFile } });
    const verify = await runStrata(['verify', '--json'], { config: passphraseOnly, timeoutMs: 300_000 });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect((verify.json as { result: { ok: boolean } }).result.ok).toBe(true);
  });
});

/**
 * Async archiving encrypts on the background pusher's main thread (its workers only checksum and
 * compress): the same guarantees as a synchronous push into an encrypted repository.
 */
describe('asynchronous archiving into an encrypted repository (PostgreSQL 15)', () => {
  it('the pusher stores only encrypted segments, and archive-get with the private key returns their exact bytes', async () => {
    const base = makeScratchDir('strata-e2e-enc-async-').dir;
    const repoDir = path.join(base, 'repo');
    fs.mkdirSync(repoDir);
    chownToPostgres(repoDir);
    const key = await makeKey(base, 'async');
    const src = await StrataCluster.create({
      version: 15,
      archive: { async: true, spoolPath: 'spool', processMax: 2 },
      repos: [{ name: 'local', plugin: 'fs', path: repoDir, encryption: { plugin: 'encrypt-pgp', publicKeys: [key.pub] } }],
    });
    const marker = Buffer.from(`STRATA-ASYNC-MARKER-${randomBytes(8).toString('hex')}`);
    await src.pg.query('CREATE TABLE t (id int, v text)');
    const segments: string[] = [];
    for (let i = 0; i < 6; i++) {
      await src.pg.query(`INSERT INTO t SELECT g, $1 || g FROM generate_series(1, 2000) g`, [marker.toString()]);
      segments.push((await src.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w'))[0]!.w);
    }
    await src.switchWalAndWait();
    // The background pusher stored them (its log is in the spool).
    expect(fs.existsSync(path.join(src.scratch, 'spool', 'main', 'local', 'archive-push', 'pusher.log'))).toBe(true);

    const walObjects = allFiles(path.join(repoDir, 'main', 'wal')).filter((f) => segments.some((w) => path.basename(f).startsWith(w)));
    expect(walObjects).toHaveLength(segments.length);
    expect(walObjects.flatMap((f) => markerHits(f, marker))).toEqual([]);

    const restoreConfig = path.join(base, 'restore-host.yaml');
    writeStrataConfig(restoreConfig, src.pg, repoDir, { archive: { timeout: 60 } }, [
      { name: 'local', plugin: 'fs', path: repoDir, encryption: { plugin: 'encrypt-pgp', publicKeys: [key.pub], privateKeys: [key.priv] } },
    ]);
    chownToPostgres(restoreConfig);
    const out = path.join(base, 'got');
    fs.mkdirSync(out);
    chownToPostgres(out);
    for (const w of segments) {
      const source = fs.readFileSync(path.join(src.pg.dataDir, 'pg_wal', w));
      // The scan is not blind: the marker is in the segment in clear.
      expect(source.includes(marker), w).toBe(true);
      const got = await runStrata(['archive-get', w, path.join(out, w)], { config: restoreConfig });
      expect(got.code, got.stderr).toBe(0);
      expect(fs.readFileSync(path.join(out, w)).equals(source), w).toBe(true);
    }
  });
});

function expectNoSecrets(result: StrataResult, passphrase: string): void {
  for (const out of [result.stdout, result.stderr]) {
    expect(out).not.toContain(passphrase);
    expect(out).not.toContain('PRIVATE KEY BLOCK');
  }
}
