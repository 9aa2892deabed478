import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestServer } from './types.js';

const PROJECT = 'strata-test';
const BUCKET = 'strata-test-bucket';
const START_TIMEOUT_MS = 60_000;
/** The child's own file: the same path from src/ (tests) and dist/ (built). */
const SCRIPT = fileURLToPath(new URL('../emulators/gcs.cjs', import.meta.url));

/**
 * Google's Cloud Storage emulator (from firebase-tools) in a child process on 127.0.0.1, with its
 * persistence in a temporary directory. It lacks some of GCS (conditional create with
 * `ifGenerationMatch: 0`, chunked resumable uploads, bucket create/delete), so the env says
 * STRATA_TEST_GCS_EMULATOR=firebase and tests skip what it cannot check.
 */
export async function startGcsEmulator(): Promise<TestServer> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-gcs-'));
  const child = fork(SCRIPT, [], {
    cwd: dir,
    // Its persistence goes to os.tmpdir(); firebase-tools keeps settings under XDG_CONFIG_HOME.
    env: { ...process.env, TMPDIR: dir, XDG_CONFIG_HOME: dir, STRATA_GCS_EMULATOR_PROJECT: PROJECT },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = outputTail(child);
  const stop = async () => {
    await stopChild(child);
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await readyPort(child, output);
    const endpoint = `http://127.0.0.1:${port}`;
    await checkBucket(endpoint);
    return {
      name: 'gcs',
      env: {
        STRATA_TEST_GCS_ENDPOINT: endpoint,
        STRATA_TEST_GCS_PROJECT: PROJECT,
        STRATA_TEST_GCS_BUCKET: BUCKET,
        STRATA_TEST_GCS_EMULATOR: 'firebase',
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The last lines the child printed, for error messages (read continuously so its pipes never fill). */
function outputTail(child: ChildProcess): () => string {
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail.trim();
}

function readyPort(child: ChildProcess, output: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`GCS emulator did not start within ${START_TIMEOUT_MS / 1000} s\n${output()}`)),
      START_TIMEOUT_MS,
    );
    const onMessage = (msg: unknown) => {
      const port = (msg as { port?: unknown } | null)?.port;
      if (typeof port === 'number') done(() => resolve(port));
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`GCS emulator exited during start-up (${signal ?? `code ${code}`})\n${output()}`));
    const onError = (err: Error) => fail(new Error(`cannot run the GCS emulator (${SCRIPT}): ${err.message}`));
    const fail = (err: Error) => done(() => reject(err));
    const done = (settle: () => void) => {
      clearTimeout(timer);
      child.off('message', onMessage).off('exit', onExit).off('error', onError);
      settle();
    };
    child.on('message', onMessage).on('exit', onExit).on('error', onError);
  });
}

/** Lists the bucket once: the emulator creates a bucket on first use, and this proves it answers. */
async function checkBucket(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/storage/v1/b/${BUCKET}/o?maxResults=1`);
  if (!res.ok) throw new Error(`GCS emulator answered ${res.status} to listing bucket ${BUCKET}: ${await res.text()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
