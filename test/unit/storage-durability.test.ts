import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dbFile, openBackend } from '../helpers/storage-temp.js';

const WRITER = fileURLToPath(new URL('../helpers/storage-writer.ts', import.meta.url));

test('every acknowledged write survives kill -9', async (t) => {
  const file = dbFile(t);
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // Kill it mid-stream, once it has acknowledged a fair number of writes.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer made no progress: ${err}`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.length > 20_000) { clearTimeout(timer); child.kill('SIGKILL'); resolve(); }
    });
    child.on('exit', () => { clearTimeout(timer); reject(new Error(`writer exited early: ${err}`)); });
  });
  assert.equal(await exited, 'SIGKILL');
  // Only complete lines were acknowledged; a trailing fragment may have been cut by the kill.
  const acked = out.split('\n').slice(0, -1);
  assert.ok(acked.length > 300, `${acked.length} acknowledged`);

  const b = await openBackend(t, file);
  const { kvs } = await b.listLatest('/core/configmaps/');
  const stored = new Set(kvs.map((kv) => kv.key));
  const lost = acked.filter((k) => !stored.has(k));
  assert.deepEqual(lost, []);
  assert.ok(b.currentRevision() >= acked.length);
});
