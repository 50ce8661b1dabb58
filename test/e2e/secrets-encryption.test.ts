// Secrets encryption at rest with the real binary and kubectl: the raw SQLite files never hold a
// Secret's value once encryption is on, and enable → reencrypt, prepare → rotate → reencrypt on a live
// server with existing Secrets keep every Secret readable throughout (k3s's secrets-encrypt flow).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, API_ONLY, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';

const servers: TestServer[] = [];
after(async () => { for (const s of servers) await s.dispose(); });

const VALUE = (i: number) => `top-secret-${process.pid}-${i}-value`;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (name: string, v: string) => `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name} }\nstringData: { password: "${v}" }\n`;

/** Which of the values appear (plain or base64, as Secret data is stored) in the datastore's files. */
function leaked(server: TestServer, values: string[]): string[] {
  const dir = join(server.dataDir, 'server', 'db');
  const files = ['state.db', 'state.db-wal'].map((f) => join(dir, f)).filter(existsSync).map((f) => readFileSync(f));
  return values.filter((v) => files.some((buf) => buf.includes(v) || buf.includes(b64(v))));
}

function encrypt(server: TestServer, op: string): string {
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), ['secrets-encrypt', op, '--data-dir', server.dataDir, '--server', server.url], { encoding: 'utf8' });
  assert.equal(r.status, 0, `secrets-encrypt ${op}: ${r.stderr}`);
  return r.stdout;
}

async function readAll(server: TestServer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = JSON.parse(ok(await server.kubectl(['get', 'secret', `s${i}`, '-o', 'json'])));
    assert.equal(Buffer.from(s.data.password, 'base64').toString(), VALUE(i), `secret s${i} readable`);
  }
}

test('--secrets-encryption: no Secret value in the raw datastore, readable after a restart', async () => {
  const server = await startServer({ args: [...API_ONLY, '--secrets-encryption'] });
  servers.push(server);
  const cfg = join(server.dataDir, 'server', 'cred', 'encryption-config.json');
  assert.equal(statSync(cfg).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(cfg, 'utf8')).kind, 'EncryptionConfiguration');
  for (let i = 0; i < 5; i++) ok(await server.kubectl(['apply', '-f', '-'], { input: secret(`s${i}`, VALUE(i)) }));
  await readAll(server, 5);
  assert.match(encrypt(server, 'status'), /^Encryption Status: Enabled\nCurrent Rotation Stage: start\n/);
  assert.deepEqual(leaked(server, [0, 1, 2, 3, 4].map(VALUE)), []);
  await server.stop();
  assert.deepEqual(leaked(server, [0, 1, 2, 3, 4].map(VALUE)), []);
  await server.launch();
  await readAll(server, 5);
});

test('enable, reencrypt, prepare, rotate, reencrypt on a live server with plaintext Secrets', async () => {
  const server = await startServer({ args: API_ONLY });
  servers.push(server);
  const n = 4;
  for (let i = 0; i < n; i++) ok(await server.kubectl(['apply', '-f', '-'], { input: secret(`s${i}`, VALUE(i)) }));
  assert.match(encrypt(server, 'status'), /Encryption Status: Disabled/);
  assert.equal(leaked(server, [VALUE(0)]).length, 1, 'the check sees plaintext when it is there');

  assert.match(encrypt(server, 'enable'), /Encryption Status: Enabled/);
  await readAll(server, n);
  ok(await server.kubectl(['apply', '-f', '-'], { input: secret(`s${n}`, VALUE(n)) }));
  assert.match(encrypt(server, 'reencrypt'), /Current Rotation Stage: reencrypt_finished/);
  await readAll(server, n + 1);

  assert.match(encrypt(server, 'prepare'), /Current Rotation Stage: prepare[\s\S]*\*\s+AES-CBC\s+aescbckey\n\s+AES-CBC\s+aescbckey-/);
  await readAll(server, n + 1);
  assert.match(encrypt(server, 'rotate'), /Current Rotation Stage: rotate[\s\S]*\*\s+AES-CBC\s+aescbckey-/);
  await readAll(server, n + 1);
  const status = encrypt(server, 'reencrypt');
  assert.match(status, /reencrypt_finished/);
  assert.doesNotMatch(status, /aescbckey\n/, 'the retired key is dropped');
  await readAll(server, n + 1);

  await server.stop();
  assert.deepEqual(leaked(server, Array.from({ length: n + 1 }, (_, i) => VALUE(i))), [], 'no value left in the raw files');
  await server.launch();
  await readAll(server, n + 1);
});

test('secrets-encrypt refuses a non-admin', async () => {
  const server = servers[servers.length - 1];
  const r = await server.request('GET', '/v1-skiff/encrypt/status', { noAuth: true });
  assert.equal(r.status, 401);
});
