// Volume files: the atomic `..data` swap (unchanged content touches nothing, removed keys disappear,
// modes kept), path validation, hostPath type checks, memory-backed emptyDir sizes, and the pull-secret
// registry matching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateFilePath, writeAtomic } from '../../src/agent/pods/atomic-writer.js';
import { checkHostPath, memoryVolumeSize, podMemoryLimit } from '../../src/agent/pods/volumes.js';
import { registryMatches, imageRegistry, pullCredentials } from '../../src/agent/pods/image-pull.js';
import { PodSources } from '../../src/agent/pods/sources.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-pods-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const f = (s: string, mode = 0o644) => ({ data: Buffer.from(s), mode });

test('writeAtomic swaps ..data, keeps visible names as symlinks, skips identical content', (t) => {
  const dir = join(tempDir(t), 'vol');
  assert.equal(writeAtomic(dir, new Map([['a', f('1')], ['sub/b', f('2', 0o400)]])), true);
  const v1 = readlinkSync(join(dir, '..data'));
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), '1');
  assert.equal(readFileSync(join(dir, 'sub', 'b'), 'utf8'), '2');
  assert.equal(statSync(join(dir, 'sub', 'b')).mode & 0o777, 0o400);
  assert.ok(lstatSync(join(dir, 'a')).isSymbolicLink());
  assert.equal(writeAtomic(dir, new Map([['a', f('1')], ['sub/b', f('2', 0o400)]])), false);
  assert.equal(readlinkSync(join(dir, '..data')), v1, 'untouched');
  assert.equal(writeAtomic(dir, new Map([['a', f('changed')]])), true);
  assert.notEqual(readlinkSync(join(dir, '..data')), v1);
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'changed');
  assert.deepEqual(readdirSync(dir).filter((n) => !n.startsWith('..')), ['a'], 'removed keys disappear');
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('..') && n !== '..data').length, 1, 'old version removed');
});

test('file paths must be relative and stay inside', () => {
  for (const bad of ['/etc/passwd', '../x', 'a/../../x', '..data', '']) assert.throws(() => validateFilePath(bad), new RegExp('invalid file path'));
  validateFilePath('a/b.txt');
});

test('hostPath types: *OrCreate creates, others check', (t) => {
  const dir = tempDir(t);
  checkHostPath(join(dir, 'new', 'd'), 'DirectoryOrCreate');
  assert.ok(statSync(join(dir, 'new', 'd')).isDirectory());
  checkHostPath(join(dir, 'f'), 'FileOrCreate');
  assert.ok(statSync(join(dir, 'f')).isFile());
  writeFileSync(join(dir, 'g'), 'x');
  assert.throws(() => checkHostPath(join(dir, 'g'), 'Directory'), /is not a directory/);
  assert.throws(() => checkHostPath(join(dir, 'nope'), 'File'), /does not exist/);
  assert.throws(() => checkHostPath('/dev/null', 'BlockDevice'), /is not a block device/);
  checkHostPath('/dev/null', 'CharDevice');
  checkHostPath(join(dir, 'anything'), '');
});

test('pull credentials match the image registry (host, port, globs, Docker Hub aliases)', async () => {
  assert.equal(imageRegistry('busybox'), 'docker.io');
  assert.equal(imageRegistry('reg.local:5000/a/b:1'), 'reg.local:5000');
  assert.ok(registryMatches('https://index.docker.io/v1/', 'docker.io'));
  assert.ok(registryMatches('reg.local:5000', 'reg.local:5000'));
  assert.ok(!registryMatches('reg.local', 'reg.local:5000'));
  assert.ok(registryMatches('*.example.com', 'eu.example.com'));
  assert.ok(!registryMatches('*.example.com', 'a.b.example.com'));
  const cfg = { auths: { 'reg.local:5000': { auth: Buffer.from('alice:pw:with:colons').toString('base64') }, 'other.io': { username: 'x', password: 'y' } } };
  const secret = { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(JSON.stringify(cfg)).toString('base64') } };
  const sources = { secret: async (n: string) => (n === 'creds' ? secret : undefined) } as unknown as PodSources;
  const pod = { spec: { imagePullSecrets: [{ name: 'creds' }, { name: 'absent' }] } };
  const r = await pullCredentials(pod, 'reg.local:5000/team/app:1', sources);
  assert.deepEqual(r.auths, [{ username: 'alice', password: 'pw:with:colons' }]);
  assert.deepEqual(r.missing, ['absent']);
});

test('a memory-backed emptyDir is sized like the kubelet: node memory, lowered to the pod limit and the sizeLimit', () => {
  const Mi = 1024 * 1024;
  const node = 4096 * Mi;
  const c = (memory?: string) => ({ name: 'c', resources: memory ? { limits: { memory } } : {} });
  const pod = (containers: object[], initContainers: object[] = []) => ({ spec: { containers, initContainers } });
  assert.equal(podMemoryLimit(pod([c('64Mi'), c('32Mi')])), 96 * Mi);
  assert.equal(podMemoryLimit(pod([c('64Mi')], [c('256Mi')])), 256 * Mi, 'an init container may need more than the app containers');
  assert.equal(podMemoryLimit(pod([c('64Mi'), c()])), undefined, 'one container without a limit leaves the pod unbounded');
  assert.equal(memoryVolumeSize(pod([c()]), undefined, node), node);
  assert.equal(memoryVolumeSize(pod([c('64Mi')]), undefined, node), 64 * Mi);
  assert.equal(memoryVolumeSize(pod([c('64Mi')]), '8Mi', node), 8 * Mi);
  assert.equal(memoryVolumeSize(pod([c('64Mi')]), '1Gi', node), 64 * Mi, 'a sizeLimit above what the pod may use is capped');
  assert.equal(memoryVolumeSize(pod([c()]), '8Gi', node), node);
});
