import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestServer } from './types.js';

const APT_HINT = 'apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw';
const BINARIES = ['ceph-authtool', 'monmaptool', 'ceph-mon', 'ceph-osd', 'ceph', 'radosgw', 'radosgw-admin'];
const READY_TIMEOUT_MS = 90_000;
const REGION = 'us-east-1';
const BUCKET = 'strata-test';

/**
 * Ceph RGW as local processes: one monitor, one OSD keeping objects in memory (memstore) and
 * radosgw, all on 127.0.0.1 with free ports, no cephx, in a fresh temporary directory. Ready in
 * about 7 s; each daemon stays near 50 MB plus the objects stored.
 */
export async function startRgw(): Promise<TestServer> {
  const bin = findBinaries();
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-rgw-'));
  const cluster = new CephProcesses(dir);
  try {
    const [monPort, rgwPort] = await freePorts(2);
    const conf = path.join(dir, 'ceph.conf');
    const fsid = randomUUID();
    await fs.writeFile(conf, cephConf(dir, fsid, monPort!, rgwPort!));
    for (const sub of ['run', 'log', 'mon', 'osd/ceph-0', 'rgw']) await fs.mkdir(path.join(dir, sub), { recursive: true });

    const run = (name: string, args: string[], input?: string) => runTool(bin(name), args, dir, input);
    await run('ceph-authtool', ['--create-keyring', 'keyring', '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    // --addv with an explicit v1 address: plain --add makes a msgr2 address on any port but 6789.
    await run('monmaptool', ['--create', '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, '--fsid', fsid, 'monmap']);
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', 'monmap', '--keyring', 'keyring']);
    cluster.start('ceph-mon', bin('ceph-mon'), ['-c', conf, '-i', 'a', '-f'], 'mon.a.log');

    // One `ceph` session for both commands: each start of its Python client costs seconds.
    const osdUuid = randomUUID();
    const out = await run('ceph', ['-c', conf, '--connect-timeout', '30'], `osd new ${osdUuid} 0\nosd crush add osd.0 1.0 root=default\n`);
    if (!out.includes("add item id 0 name 'osd.0'")) throw new Error(`could not register the OSD with the monitor:\n${out}`);
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    cluster.start('ceph-osd', bin('ceph-osd'), ['-c', conf, '-i', '0', '-f'], 'osd.0.log');
    cluster.start('radosgw', bin('radosgw'), ['-c', conf, '-n', 'client.rgw.a', '-f'], 'client.rgw.a.log');

    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await cluster.waitFor(`radosgw at ${endpoint}`, READY_TIMEOUT_MS, async () => (await request(endpoint, 'GET', '/')).status === 200);

    const accessKeyId = `strata${randomBytes(6).toString('hex')}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await run('radosgw-admin', [
      '-c',
      conf,
      'user',
      'create',
      '--uid=strata-test',
      '--display-name=strata test',
      `--access-key=${accessKeyId}`,
      `--secret-key=${secretAccessKey}`,
    ]);
    const created = await request(endpoint, 'PUT', `/${BUCKET}`, { accessKeyId, secretAccessKey });
    if (created.status !== 200) throw new Error(`creating bucket ${BUCKET} failed: HTTP ${created.status} ${created.body}`);

    return {
      name: 's3',
      env: {
        STRATA_TEST_S3_ENDPOINT: endpoint,
        STRATA_TEST_S3_REGION: REGION,
        STRATA_TEST_S3_ACCESS_KEY_ID: accessKeyId,
        STRATA_TEST_S3_SECRET_ACCESS_KEY: secretAccessKey,
        STRATA_TEST_S3_BUCKET: BUCKET,
      },
      stop: () => cluster.stop(),
    };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Where each Ceph tool is; fails naming the apt-get command when any is missing. Exported for tests. */
export function findBinaries(
  dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin'].filter(Boolean),
): (name: string) => string {
  const found = new Map<string, string>();
  for (const name of BINARIES) {
    for (const d of dirs) {
      const p = path.join(d, name);
      try {
        accessSync(p, fsConstants.X_OK);
        found.set(name, p);
        break;
      } catch {
        // not in this directory
      }
    }
  }
  const missing = BINARIES.filter((n) => !found.has(n));
  if (missing.length > 0) throw new Error(`Ceph RGW is not installed (missing ${missing.join(', ')}): run "${APT_HINT}" as root`);
  return (name) => found.get(name)!;
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v1:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
mon data = ${dir}/mon/$cluster-$id
osd data = ${dir}/osd/$cluster-$id
# One OSD: pools of size 1, placement across OSDs rather than hosts.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
# The OSD is placed in the CRUSH map at set-up; on start it must not try again.
osd crush update on start = false
osd class update on start = false
# radosgw creates its pools one by one at start; a 1 s Paxos round each made start-up 10 s slower.
paxos propose interval = 0.05
paxos min wait = 0.01
# A test machine's disk may be fuller than a monitor likes; it holds only a few MB here.
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw.a]
rgw data = ${dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 64
# Deleted and replaced objects' data is reclaimed by RGW's garbage collector, by default after
# two hours: in memory, a few large test objects would fill the OSD and stall every write.
rgw gc obj min wait = 10
rgw gc processor period = 10
`;
}

/** The daemons of one test cluster; stop() ends each and removes the directory. */
class CephProcesses {
  private readonly children: { name: string; proc: ChildProcess; log: string }[] = [];
  private stopped = false;

  constructor(private readonly dir: string) {}

  start(name: string, file: string, args: string[], log: string): void {
    // setpriv --pdeathsig: the daemon dies with the test runner even if it is killed outright.
    const [cmd, argv] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', ['--pdeathsig', 'SIGKILL', file, ...args]] : [file, args];
    const proc = spawn(cmd, argv, { cwd: this.dir, stdio: 'ignore' });
    proc.on('error', () => undefined);
    this.children.push({ name, proc, log: path.join(this.dir, 'log', log) });
  }

  /** Polls `ready` until it holds; fails early, with the log's tail, when a daemon exits. */
  async waitFor(what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const dead = this.children.find((c) => c.proc.exitCode !== null || c.proc.signalCode !== null);
      if (dead)
        throw new Error(
          `${dead.name} exited (${dead.proc.exitCode ?? dead.proc.signalCode}) before ${what} was ready\n${await tail(dead.log)}`,
        );
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) {
        const logs = await Promise.all(this.children.map(async (c) => `--- ${c.name}\n${await tail(c.log)}`));
        throw new Error(`${what} not ready after ${timeoutMs / 1000} s\n${logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const { proc } of [...this.children].reverse()) await terminate(proc);
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

async function terminate(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function tail(file: string, lines = 15): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '(no log)');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs a set-up tool to completion; its output on failure. */
function runTool(file: string, args: string[], cwd: string, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(file, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${code ?? signal}):\n${out.trim()}`));
    });
    proc.stdin.end(input ?? '');
  });
}

async function freePorts(n: number): Promise<number[]> {
  // Hold all listeners open until each has its port, so the n ports differ.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * One HTTP request to RGW, signed with AWS signature version 2 when credentials are given (RGW
 * accepts it; enough to create the test bucket without an SDK in this package).
 */
function request(
  endpoint: string,
  method: string,
  resource: string,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = {};
  if (credentials) {
    const date = new Date().toUTCString();
    headers['x-amz-date'] = date;
    const toSign = `${method}\n\n\n\nx-amz-date:${date}\n${resource}`;
    const signature = createHmac('sha1', credentials.secretAccessKey).update(toSign).digest('base64');
    headers.authorization = `AWS ${credentials.accessKeyId}:${signature}`;
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${endpoint}${resource}`, { method, headers, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
