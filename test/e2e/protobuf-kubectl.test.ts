// Live check against the real kubectl 1.32: every typed command posts protobuf, and the decoded
// body equals what the same kubectl prints for the object with --dry-run=client -o json (Go's
// own JSON rendering of the struct it encoded). The stored fixtures pin the same bodies offline.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeProtobuf, PROTOBUF_CONTENT_TYPE } from '../../src/apiserver/protobuf/decode.js';
import { kubectlBinary } from '../helpers/kubectl.js';
import { captureCommands, dryRunArgs, NO_DRY_RUN, startCaptureServer, type CaptureServer } from '../fixtures/protobuf/capture.js';

const skip = existsSync(kubectlBinary('1.32')) ? false : 'kubectl 1.32 is not installed';
let server: CaptureServer | undefined;
after(() => server?.close());

// About 50 kubectl runs: under a minute on a quiet machine, several on a busy one.
test('kubectl 1.32 typed commands post protobuf that decodes to the object kubectl means', { skip, timeout: 300_000 }, async () => {
  server = await startCaptureServer();
  const s = server;
  for (const [name, args] of Object.entries(captureCommands(s.dir))) {
    s.requests.length = 0;
    const r = await s.kubectl(args);
    assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.equal(s.requests.length, 1, name);
    const [req] = s.requests;
    assert.equal(req.contentType, PROTOBUF_CONTENT_TYPE, name);
    const { object } = decodeProtobuf(req.body);
    if (NO_DRY_RUN.has(name)) continue;
    const dry = await s.kubectl(dryRunArgs(args));
    assert.equal(dry.code, 0, `${name} --dry-run: ${dry.stderr}`);
    assert.deepEqual(object, JSON.parse(dry.stdout), name);
    if (name === 'secret-tls') {
      assert.equal((object as { type: string }).type, 'kubernetes.io/tls');
      assert.deepEqual((object as { data: unknown }).data, {
        'tls.crt': readFileSync(join(s.dir, 'tls.crt')).toString('base64'),
        'tls.key': readFileSync(join(s.dir, 'tls.key')).toString('base64'),
      });
    }
  }
});
