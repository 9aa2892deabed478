import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { TestServer } from './types.js';

/** Azurite's built-in development account (public, documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'strata-test';
const START_TIMEOUT_MS = 60_000;

export interface AzuriteOptions {
  /** Listen on this port (default: one the kernel picks). */
  port?: number;
  /** Keep blobs in this directory and leave it on stop (an outage test restarts on the same data). */
  dataDir?: string;
}

/**
 * Azurite's blob service (the pinned 3.35.0; newer releases are 2-3x slower on Node 20) on a
 * loopback port the kernel picks, with its data in a fresh directory, and one container.
 * `--skipApiVersionCheck` because the SDK speaks a newer API version than Azurite announces.
 */
export async function startAzurite(opts: AzuriteOptions = {}): Promise<TestServer> {
  const main = path.join(path.dirname(createRequire(import.meta.url).resolve('azurite/package.json')), 'dist/src/blob/main.js');
  const dir = opts.dataDir ?? (await fs.mkdtemp(path.join(tmpdir(), 'strata-azurite-')));
  const child = spawn(
    process.execPath,
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(opts.port ?? 0),
      '-l',
      dir,
      '--disableTelemetry',
      '--silent',
      '--skipApiVersionCheck',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stop = async (): Promise<void> => {
    await kill(child);
    if (!opts.dataDir) await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await listeningPort(child);
    const endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`;
    await createContainer(endpoint);
    return {
      name: 'azure',
      env: {
        STRATA_TEST_AZURE_ENDPOINT: endpoint,
        STRATA_TEST_AZURE_ACCOUNT: ACCOUNT,
        STRATA_TEST_AZURE_KEY: KEY,
        STRATA_TEST_AZURE_CONTAINER: CONTAINER,
        STRATA_TEST_AZURE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${endpoint};`,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Azurite prints the address it listens on once the port is bound (port 0: the kernel's choice). */
function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new Error(`Azurite did not start within ${START_TIMEOUT_MS / 1000} s:\n${output}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(Number(m[1]));
      }
    };
    const onExit = (code: number | null): void => fail(new Error(`Azurite exited with code ${code} before listening:\n${output}`));
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', onExit);
    child.once('error', fail);
  });
}

/** Creates the test container, retrying while Azurite finishes loading its metadata store. */
async function createContainer(endpoint: string): Promise<void> {
  const client = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(ACCOUNT, KEY), { retryOptions: { maxTries: 1 } });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      await client.getContainerClient(CONTAINER).createIfNotExists();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`Azurite at ${endpoint} does not answer: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
