// The release dir a server offers its nodes (src/controllers/upgrade/artifacts.ts): found with its
// checksum or refused with a message naming what is there; downloads for nodes and admins only;
// uploads by admins kept only when they match the checksum given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { findArtifact, handleReleaseDownload } from '../../src/controllers/upgrade/artifacts.js';
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
