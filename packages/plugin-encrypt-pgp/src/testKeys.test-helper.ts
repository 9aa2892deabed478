import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as openpgp from 'openpgp';

export interface TestKey {
  fingerprint: string;
  publicFile: string;
  privateFile: string;
  armoredPrivate: string;
}

/** A fresh curve25519 key pair in `dir` (fast to generate). */
export async function makeTestKey(dir: string, name: string, passphrase?: string): Promise<TestKey> {
  const { publicKey, privateKey } = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name, email: `${name}@example.invalid` }],
    passphrase,
    format: 'armored',
  });
  const publicFile = path.join(dir, `${name}.pub.asc`);
  const privateFile = path.join(dir, `${name}.key.asc`);
  await fs.writeFile(publicFile, publicKey);
  await fs.writeFile(privateFile, privateKey, { mode: 0o600 });
  const fingerprint = (await openpgp.readKey({ armoredKey: publicKey })).getFingerprint();
  return { fingerprint, publicFile, privateFile, armoredPrivate: privateKey };
}
