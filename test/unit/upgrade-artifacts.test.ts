// The release dir a server offers its nodes (src/controllers/upgrade/artifacts.ts): found with its
// checksum or refused with a message naming what is there; downloads for nodes and admins only;
// uploads by admins kept only when they match the checksum given; with several servers, one lacking a
// release fetches it from another (pull on miss).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { apiServerPeers, fetchFromPeers, findArtifact, handleReleaseDownload, LOCAL_ONLY_HEADER, SHA256_HEADER } from '../../src/controllers/upgrade/artifacts.js';
import type { ApiClient } from '../../src/client/types.js';
import { ApiError } from '../../src/api/status.js';

const FILE = 'skiff-0.2.0-linux-amd64.tar.gz';
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

test('release dir: lookup, download by nodes, upload by admins with a checksum', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'upgrade-art-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.match(findArtifact(dir, '0.2.0', 'amd64') as string, /no release skiff-0\.2\.0-linux-amd64\.tar\.gz in .* \(versions there for amd64: none\)/);

  let groups: string[] = [];
  const server = createServer((req, res) => {
    try {
      if (!handleReleaseDownload(dir, req, res, { groups })) { res.writeHead(404); res.end(); }
    } catch (e) {
      const err = e as ApiError;
      res.writeHead(err.code, { 'content-type': 'application/json' }); res.end(JSON.stringify(err.toStatus()));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const call = (method: string, file: string, body?: Buffer, headers: Record<string, string> = {}) => new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: `/v1-skiff/releases/${file}`, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const data = Buffer.from('a release, for the test\n'.repeat(1000));

  groups = ['system:nodes'];
  assert.equal((await call('PUT', FILE, data, { 'x-skiff-sha256': sha(data) })).status, 403, 'nodes may not upload');
  groups = ['system:masters'];
  const bad = await call('PUT', FILE, data, { 'x-skiff-sha256': sha('something else') });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body.toString()).message, /checksum mismatch for skiff-0\.2\.0-linux-amd64\.tar\.gz: expected [0-9a-f]{64}, got [0-9a-f]{64} \(a damaged or tampered upload\); nothing was stored/);
  assert.deepEqual(readdirSync(dir), [], 'nothing stored');
  assert.equal((await call('PUT', FILE, data)).status, 400, 'the checksum header is required');
  assert.equal((await call('PUT', '..%2Fevil.tar.gz', data, { 'x-skiff-sha256': sha(data) })).status, 400);
  const ok = await call('PUT', FILE, data, { 'x-skiff-sha256': sha(data) });
  assert.equal(ok.status, 201, ok.body.toString());
  assert.equal(readFileSync(join(dir, 'SHA256SUMS'), 'utf8'), `${sha(data)}  ${FILE}\n`);
  assert.deepEqual(findArtifact(dir, '0.2.0', 'amd64'), { file: FILE, sha256: sha(data), size: data.length });
  assert.match(findArtifact(dir, '0.3.0', 'amd64') as string, /versions there for amd64: 0\.2\.0/);

  groups = ['system:nodes'];
  const got = await call('GET', FILE);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data));
  assert.equal((await call('GET', 'skiff-9.9.9-linux-amd64.tar.gz')).status, 404);
  groups = ['system:authenticated'];
  assert.equal((await call('GET', FILE)).status, 403, 'other users may not download');
  writeFileSync(join(dir, 'SHA256SUMS'), '');
  assert.match(findArtifact(dir, '0.2.0', 'amd64') as string, /lists no checksum for skiff-0\.2\.0-linux-amd64\.tar\.gz/);
  assert.ok(!existsSync(join(dir, 'SHA256SUMS.tmp')));
});

test('HA: a server lacking a release fetches it from a peer that has it, checked against the peer\'s checksum; peers never ask each other in a loop', async (t) => {
  const dirs = [mkdtempSync(join(tmpdir(), 'upgrade-ha-a-')), mkdtempSync(join(tmpdir(), 'upgrade-ha-b-'))];
  t.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
  const hits: string[][] = [[], []];
  const urls: string[] = [];
  // Two servers, each with its own release dir, each listing both (itself too, as the Endpoints do without `self`).
  const servers = dirs.map((dir, i) => createServer((req, res) => {
    hits[i]!.push(`${req.method} ${req.url} ${req.headers[LOCAL_ONLY_HEADER] ? 'local' : ''}`);
    try {
      if (!handleReleaseDownload(dir, req, res, { groups: ['system:masters'] }, { urls: async () => urls })) { res.writeHead(404); res.end(); }
    } catch (e) {
      const err = e as ApiError;
      res.writeHead(err.code, { 'content-type': 'application/json' }); res.end(JSON.stringify(err.toStatus()));
    }
  }));
  for (const s of servers) { await new Promise<void>((r) => s.listen(0, '127.0.0.1', r)); t.after(() => s.close()); urls.push(`http://127.0.0.1:${(s.address() as { port: number }).port}`); }
  const call = (i: number, method: string, file: string, body?: Buffer, headers: Record<string, string> = {}) => new Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request(`${urls[i]}/v1-skiff/releases/${file}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const data = Buffer.from('an HA release\n'.repeat(5000));
  assert.equal((await call(0, 'PUT', FILE, data, { [SHA256_HEADER]: sha(data) })).status, 201, 'uploaded to server A');

  // A node (through the load balancer) asks B: B fetches from A, keeps it with its checksum, serves it.
  const got = await call(1, 'GET', FILE);
  assert.equal(got.status, 200, got.body.toString());
  assert.ok(got.body.equals(data));
  assert.equal(got.headers[SHA256_HEADER], sha(data));
  assert.equal(readFileSync(join(dirs[1]!, 'SHA256SUMS'), 'utf8'), `${sha(data)}  ${FILE}\n`);
  assert.deepEqual(findArtifact(dirs[1]!, '0.2.0', 'amd64'), { file: FILE, sha256: sha(data), size: data.length });
  assert.ok(hits[0]!.includes(`GET /v1-skiff/releases/${FILE} local`), 'B asked A for its own copy only');
  assert.deepEqual(readdirSync(dirs[1]!).filter((f) => f.startsWith('.')), [], 'no temp file left');

  // Neither has it: a 404 naming what was tried; A, asked by B, does not ask B back.
  const missing = 'skiff-0.3.0-linux-amd64.tar.gz';
  hits[0]!.length = 0; hits[1]!.length = 0;
  const nf = await call(1, 'GET', missing);
  assert.equal(nf.status, 404);
  assert.match(JSON.parse(nf.body.toString()).message, /release skiff-0\.3\.0-linux-amd64\.tar\.gz not found on this server; no other server gave it \(http:\/\/127\.0\.0\.1:\d+: HTTP 404; http:\/\/127\.0\.0\.1:\d+: HTTP 404\)/);
  assert.deepEqual(hits[0], [`GET /v1-skiff/releases/${missing} local`]);
  assert.equal(hits[1]!.filter((h) => h.endsWith('local')).length, 1, 'B asked itself once (listed), which answered from its dir');
  // A miss is remembered a while: a plan naming a missing version does not ask the peers at every node heartbeat.
  hits[0]!.length = 0;
  assert.equal((await call(1, 'GET', missing)).status, 404);
  assert.deepEqual(hits[0], [], 'not asked again at once');
  assert.equal(await fetchFromPeers(dirs[1]!, missing, { urls: async () => urls }, () => Date.now() + 60_000).then((r) => typeof r), 'string');
  assert.deepEqual(hits[0], [`GET /v1-skiff/releases/${missing} local`], 'asked again once the miss is old');
});

test('HA: a peer\'s bytes that do not match the checksum it lists are not kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'upgrade-ha-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const liar = createServer((_req, res) => { res.writeHead(200, { [SHA256_HEADER]: sha('other bytes') }); res.end('tampered bytes'); });
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  t.after(() => liar.close());
  const r = await fetchFromPeers(dir, FILE, { urls: async () => [`http://127.0.0.1:${(liar.address() as { port: number }).port}`] });
  assert.match(r as string, /no other server gave it \(http:\/\/127\.0\.0\.1:\d+: checksum mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; not kept\)/);
  assert.deepEqual(readdirSync(dir), [], 'nothing kept');
});

test('HA: the peers are the kubernetes Endpoints\' addresses but this server', async () => {
  const client = { get: async () => ({ subsets: [{ addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }, { ip: 'fd00::3' }], ports: [{ port: 6443 }] }] }) } as unknown as ApiClient;
  assert.deepEqual(await apiServerPeers(client, '10.0.0.1:6443', undefined).urls(), ['https://10.0.0.2:6443', 'https://[fd00::3]:6443']);
  const none = { get: async () => undefined } as unknown as ApiClient;
  assert.deepEqual(await apiServerPeers(none, '10.0.0.1:6443', undefined).urls(), []);
});
