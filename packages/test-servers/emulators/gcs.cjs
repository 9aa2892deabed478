'use strict';
/*
 * The GCS emulator process that packages/test-servers/src/gcs.ts forks: Google's Cloud Storage
 * emulator from firebase-tools, serving the GCS JSON API on 127.0.0.1 at a port the OS picks.
 * It sends {port} to its parent over IPC once it serves requests, and exits when the parent goes.
 *
 * Plain CommonJS because it reaches into firebase-tools' compiled internals, which have no types.
 * It differs from `firebase emulators:start --only storage` in three ways, each for a reason:
 *  - The Firebase security-rules runtime is never started: it needs Java 21 and a jar downloaded
 *    from the internet. The GCS JSON API routes use the emulator's admin storage layer, which
 *    does not consult rules.
 *  - The emulator reads every request body into memory and caps it at 130 MB; real GCS accepts a
 *    whole object in one streaming request. The cap is lifted so the conformance kit's large
 *    streamed object fits (the memory it costs is this process's, not the tests').
 *  - Some object routes (metadata PATCH, copy) are registered only without the /storage/v1
 *    prefix the client library sends; that prefix is stripped before routing.
 * Persistence goes to os.tmpdir(), which the parent points at a directory it removes afterwards.
 */
const http = require('node:http');
const path = require('node:path');

const projectId = process.env.STRATA_GCS_EMULATOR_PROJECT || 'strata-test';
const firebaseRoot = path.dirname(require.resolve('firebase-tools/package.json'));
const fromFirebase = (p) => require(path.join(firebaseRoot, p));

function liftBodySizeCap() {
  const bodyParser = require(require.resolve('body-parser', { paths: [firebaseRoot] }));
  const raw = bodyParser.raw;
  Object.defineProperty(bodyParser, 'raw', {
    configurable: true,
    enumerable: true,
    value: (options) => raw({ ...options, limit: '4gb' }),
  });
}

async function main() {
  liftBodySizeCap();
  const { StorageEmulator } = fromFirebase('lib/emulator/storage/index.js');
  const { createApp } = fromFirebase('lib/emulator/storage/server.js');
  const { EmulatorRegistry } = fromFirebase('lib/emulator/registry.js');

  // Listen first so the port is known (and ours) before the emulator builds URLs with it.
  let app;
  const server = http.createServer((req, res) => {
    req.url = req.url.replace(/^\/storage\/v1\//, '/');
    app(req, res);
  });
  // Node closes idle keep-alive sockets after 5 s; a client reusing one at that moment sees
  // ECONNRESET. GCS keeps them far longer, so this server never closes them first.
  server.keepAliveTimeout = 0;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  const emulator = new StorageEmulator({ projectId, host: '127.0.0.1', port, rules: [], auto_download: false });
  // Upload session URLs and self links are built from the registered instance's host and port.
  EmulatorRegistry.set('storage', emulator);
  await emulator.rulesManager.start();
  app = await createApp(projectId, emulator);
  process.send({ port });
}

process.on('disconnect', () => process.exit(0));
main().catch((err) => {
  process.stderr.write(`GCS emulator failed to start: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
