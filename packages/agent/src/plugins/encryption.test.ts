import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError, noopLogger, validateConfig } from '@strata/core';
import { openRepository } from './loadPlugins.js';
import { assertCanDecrypt, rotateKeys } from './encryption.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-encryption-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let pub: string;
let priv: string;
let fingerprint: string;

beforeAll(async () => {
  const { publicKey, privateKey } = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ name: 't' }], format: 'armored' });
  pub = path.join(dir, 'k.pub.asc');
  priv = path.join(dir, 'k.key.asc');
  fs.writeFileSync(pub, publicKey);
  fs.writeFileSync(priv, privateKey, { mode: 0o600 });
  fingerprint = (await openpgp.readKey({ armoredKey: publicKey })).getFingerprint().toUpperCase();
});

function config(repos: Record<string, unknown>[], top: Record<string, unknown> = {}) {
  return validateConfig({ clusters: { main: { pgdata: '/pg' } }, repos, stateDir: path.join(dir, 'state'), ...top }, 'test.yaml');
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string; hint?: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isStrataError(err)) throw new Error(`expected a StrataError, got ${String(err)}`);
  return err;
}

const secretMarker = Buffer.from('{"secret":"cluster-identity-123"}');

describe('repository encryption from the config', () => {
  it('encrypts through the top-level default, per-repository settings override it, and false turns it off', async () => {
    const cfg = config(
      [
        { name: 'a', plugin: 'fs', path: 'a', fsync: false },
        { name: 'b', plugin: 'fs', path: 'b', fsync: false, encryption: false },
      ],
      { encryption: { plugin: 'encrypt-pgp', publicKeys: [pub], privateKeys: [priv] } },
    );
    for (const name of ['a', 'b']) {
      const repo = await openRepository(cfg, 'test.yaml', dir, name, noopLogger);
      await repo.put('main/backup/L/pack/000000', secretMarker);
      expect((await repo.getBuffer('main/backup/L/pack/000000')).equals(secretMarker)).toBe(true);
    }
    expect(fs.readFileSync(path.join(dir, 'a', 'main/backup/L/pack/000000')).includes(secretMarker)).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'b', 'main/backup/L/pack/000000')).equals(secretMarker)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'a', 'main', 'keyring'))).toHaveLength(1);
  });

  it("validates the plugin's options with the path of the bad key, and never echoes an inline passphrase", async () => {
    const bad = config([{ name: 'r', plugin: 'fs', path: 'r', encryption: { plugin: 'encrypt-pgp', publicKeys: [pub], bogus: 1 } }]);
    const err = await failure(openRepository(bad, 'test.yaml', dir, undefined, noopLogger));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toContain('repos[0].encryption');
    const inline = config([{ name: 'r', plugin: 'fs', path: 'r', encryption: { plugin: 'encrypt-pgp', passphrase: 'hunter2-inline' } }]);
    const err2 = await failure(openRepository(inline, 'test.yaml', dir, undefined, noopLogger));
    expect(err2.message).toContain('repos[0].encryption.passphrase');
    expect(`${err2.message} ${err2.hint}`).not.toContain('hunter2-inline');
  });

  it('refuses a restore on a public-key-only host up front, naming the fingerprint', async () => {
    const cfg = config([{ name: 'r', plugin: 'fs', path: 'r', encryption: { plugin: 'encrypt-pgp', publicKeys: [pub] } }]);
    const err = await failure(assertCanDecrypt(cfg, 'test.yaml', dir, undefined, noopLogger));
    expect(err.code).toBe('ConfigInvalid');
    expect(err.message).toContain(fingerprint);
    const full = config([
      { name: 'r', plugin: 'fs', path: 'r', encryption: { plugin: 'encrypt-pgp', publicKeys: [pub], privateKeys: [priv] } },
    ]);
    await expect(assertCanDecrypt(full, 'test.yaml', dir, undefined, noopLogger)).resolves.toBeUndefined();
    await expect(
      assertCanDecrypt(config([{ name: 'r', plugin: 'fs', path: 'r' }]), 'test.yaml', dir, undefined, noopLogger),
    ).resolves.toBeUndefined();
  });

  it('rotates the keys of every encrypted repository, and says when none is', async () => {
    const cfg = config([
      {
        name: 'enc',
        plugin: 'fs',
        path: 'rot',
        fsync: false,
        encryption: { plugin: 'encrypt-pgp', publicKeys: [pub], privateKeys: [priv] },
      },
    ]);
    const repo = await openRepository(cfg, 'test.yaml', dir, undefined, noopLogger);
    await repo.put('main/cluster.info', secretMarker);
    expect(await rotateKeys(cfg, 'test.yaml', dir, undefined, ['main'], noopLogger)).toEqual([
      { repo: 'enc', clusters: ['main'], dataKeys: 1, rewrapped: 0, unchanged: 1 },
    ]);
    const clear = config([{ name: 'clear', plugin: 'fs', path: 'clear' }]);
    expect((await failure(rotateKeys(clear, 'test.yaml', dir, undefined, ['main'], noopLogger))).code).toBe('ConfigInvalid');
  });
});
