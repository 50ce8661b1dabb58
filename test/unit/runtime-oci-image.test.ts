// Image archives built by hand must be what real tools read: the tar must list correctly with GNU tar,
// every blob must match its digest, a multi-arch image must be an index of per-platform manifests,
// and the same input must give the same bytes (so re-imports are no-ops).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  buildDockerArchive, buildOciArchive, nodePlatform, sha256, writeTar,
} from '../../src/agent/runtime/oci-image-builder.js';
import { normalizeImageRef } from '../../src/agent/runtime/image-ref.js';
import { buildPauseImage, detectCompression, PAUSE_IMAGE } from '../../src/agent/runtime/images.js';

/** Minimal ustar reader for the assertions: name → content. */
function readTar(buf: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    const prefix = str(345, 155);
    const name = (prefix ? `${prefix}/` : '') + str(0, 100);
    const size = parseInt(str(124, 12), 8);
    files.set(name, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

function withTemp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-oci-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('writeTar: GNU tar lists files, dirs, symlinks, modes and long paths; checksums are valid', () => {
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
  const tar = writeTar([
    { name: 'bin', type: 'dir' },
    { name: 'bin/tool', mode: 0o755, data: 'x'.repeat(513) },
    { name: 'bin/alias', type: 'symlink', linkname: 'tool', mode: 0o777 },
    { name: long, data: 'deep' },
  ]);
  assert.equal(tar.length % 512, 0);
  withTemp((dir) => {
    const file = join(dir, 'a.tar');
    writeFileSync(file, tar);
    const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
    assert.match(listing, /^drwxr-xr-x .* bin\/$/m);
    assert.match(listing, /^-rwxr-xr-x .* 513 .* bin\/tool$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin\/alias -> tool$/m);
    assert.ok(listing.includes(long), listing);
    execFileSync('tar', ['-xf', file, '-C', dir]);
    assert.equal(readFileSync(join(dir, long), 'utf8'), 'deep');
  });
  assert.throws(() => writeTar([{ name: 'x'.repeat(300) }]), /too long/);
});

test('buildOciArchive: a multi-arch index of per-platform manifests; every blob matches its digest', () => {
  const layer = writeTar([{ name: 'hello', data: 'world' }]);
  const other = { os: 'linux', architecture: 'riscv64' };
  const files = readTar(buildOciArchive({
    name: 'skiff.local/demo:1', layers: [layer], config: { entrypoint: ['/hello'] }, platforms: [nodePlatform(), other],
  }));
  assert.deepEqual(JSON.parse(files.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' });
  for (const [name, data] of files) {
    if (name.startsWith('blobs/sha256/') && data.length) assert.equal(sha256(data), name.slice('blobs/sha256/'.length), name);
  }
  const blob = (digest: string) => JSON.parse(files.get(`blobs/sha256/${digest.slice(7)}`)!.toString());
  const top = JSON.parse(files.get('index.json')!.toString()).manifests;
  assert.equal(top.length, 1);
  assert.equal(top[0].mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.equal(top[0].annotations['io.containerd.image.name'], 'skiff.local/demo:1');
  assert.equal(top[0].annotations['org.opencontainers.image.ref.name'], '1');
  const index = blob(top[0].digest);
  assert.deepEqual(index.manifests.map((m: any) => m.platform), [nodePlatform(), other]);
  for (const m of index.manifests) {
    const manifest = blob(m.digest);
    const config = blob(manifest.config.digest);
    assert.equal(config.architecture, m.platform.architecture);
    assert.deepEqual(config.config.Entrypoint, ['/hello']);
    // diff_ids name the uncompressed layer; the manifest names the gzipped blob.
    assert.deepEqual(config.rootfs.diff_ids, [`sha256:${sha256(layer)}`]);
    const gz = files.get(`blobs/sha256/${manifest.layers[0].digest.slice(7)}`)!;
    assert.deepEqual(gunzipSync(gz), layer);
  }
});

test('buildOciArchive: single platform is a plain manifest; output is reproducible', () => {
  const spec = { name: 'busybox', layers: [writeTar([{ name: 'a', data: 'b' }])], config: { cmd: ['sh'] } };
  const a = buildOciArchive(spec);
  assert.deepEqual(a, buildOciArchive(spec), 'same input, same bytes');
  const top = JSON.parse(readTar(a).get('index.json')!.toString()).manifests[0];
  assert.equal(top.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(top.annotations['io.containerd.image.name'], 'docker.io/library/busybox:latest');
});

test('buildDockerArchive: manifest.json names config, tag and layer files', () => {
  const layer = writeTar([{ name: 'f', data: '1' }]);
  const files = readTar(buildDockerArchive({ name: 'reg.local:5000/team/app:v2', layers: [layer], config: { cmd: ['run'] } }));
  const [m] = JSON.parse(files.get('manifest.json')!.toString());
  assert.deepEqual(m.RepoTags, ['reg.local:5000/team/app:v2']);
  assert.deepEqual(files.get(m.Layers[0]), layer);
  assert.deepEqual(JSON.parse(files.get(m.Config)!.toString()).config.Cmd, ['run']);
});

test('normalizeImageRef follows Docker’s familiar-name rules', () => {
  assert.equal(normalizeImageRef('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeImageRef('busybox:1.36'), 'docker.io/library/busybox:1.36');
  assert.equal(normalizeImageRef('docker.io/busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeImageRef('user/app'), 'docker.io/user/app:latest');
  assert.equal(normalizeImageRef('localhost/app'), 'localhost/app:latest');
  assert.equal(normalizeImageRef('reg:5000/app'), 'reg:5000/app:latest');
  assert.equal(normalizeImageRef('ghcr.io/a/b@sha256:abc'), 'ghcr.io/a/b@sha256:abc');
  assert.throws(() => normalizeImageRef('a b'));
});

test('the pause image runs busybox sleep as its entrypoint; compression is sniffed by magic', () => {
  const files = readTar(buildPauseImage());
  const top = JSON.parse(files.get('index.json')!.toString()).manifests[0];
  assert.equal(top.annotations['io.containerd.image.name'], PAUSE_IMAGE);
  const manifest = JSON.parse(files.get(`blobs/sha256/${top.digest.slice(7)}`)!.toString());
  const config = JSON.parse(files.get(`blobs/sha256/${manifest.config.digest.slice(7)}`)!.toString());
  assert.deepEqual(config.config.Entrypoint, ['/bin/sleep', 'infinity']);
  assert.throws(() => buildPauseImage('/nonexistent/busybox'), /busybox-static/);

  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0])), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd');
  assert.equal(detectCompression(Buffer.from('BZh91A')), 'bzip2');
  assert.equal(detectCompression(Buffer.from('oci-la')), 'none');
});
