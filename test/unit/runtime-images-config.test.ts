// The images folder import logic (with a stand-in `ctr` and CRI, so it runs without root), and the
// containerd and CNI configs the agent writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { importImageDir, imagesDir } from '../../src/agent/runtime/images.js';
import { containerdPaths, renderContainerdConfig } from '../../src/agent/runtime/containerd-config.js';
import { CNI_CONFLIST_FILE, writeBridgeCniConfig } from '../../src/agent/runtime/cni-config.js';
import type { CriClient } from '../../src/agent/runtime/cri-client.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-images-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A `ctr` that records each call's (decompressed) stdin and "imports" the image named by its first
 * line, like the real one reports it; `FAIL` makes it fail as on a corrupt archive.
 */
function fakeCtr(dir: string): { bin: string; calls: () => string[] } {
  const log = join(dir, 'ctr-calls');
  mkdirSync(log);
  const bin = join(dir, 'ctr');
  writeFileSync(bin, `#!/bin/sh
input=$(cat)
echo "$input" > "${log}/$(date +%s%N)"
case "$input" in FAIL*) echo "ctr: unexpected EOF" >&2; exit 1;; esac
echo "unpacking $input (sha256:0123abcd)...done"
`);
  chmodSync(bin, 0o755);
  return { bin, calls: () => readdirSync(log).sort().map((f) => readFileSync(join(log, f), 'utf8').trim()) };
}

function fakeCri(present: Set<string>): CriClient {
  return {
    listImages: async () => [...present].map((tag) => ({ id: `id-${tag}`, repoTags: [tag] })),
    imageStatus: async (name: string) => (present.has(name) ? { id: `id-${name}` } : null),
  } as unknown as CriClient;
}

test('every file in the images folder is imported once, whatever its name and compression', async (t) => {
  const dataDir = tempDir(t);
  const dir = imagesDir(dataDir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'plain.tar'), 'reg.local/plain:1');
  writeFileSync(join(dir, 'bundle-no-extension'), gzipSync('reg.local/gz:1'));
  writeFileSync(join(dir, 'zst.tar.zst'), execFileSync('zstd', ['-q', '-c'], { input: 'reg.local/zst:1' }));
  writeFileSync(join(dir, 'broken.tar'), 'FAIL');
  writeFileSync(join(dir, '.hidden'), 'reg.local/hidden:1');
  mkdirSync(join(dir, 'subdir'));
  const ctr = fakeCtr(tempDir(t));
  const present = new Set<string>();
  // The fake CRI "sees" what the fake ctr imported.
  const cri = fakeCri(present);
  const origImageStatus = cri.imageStatus.bind(cri);
  (cri as any).imageStatus = async (name: string) => { present.add(name); return origImageStatus(name); };
  const opts = { dataDir, containerdSocket: '/nonexistent.sock', cri, ctrBin: ctr.bin, log: pino({ level: 'silent' }) };

  const first = await importImageDir(opts);
  assert.deepEqual(first.map((r) => [r.file.slice(dir.length + 1), r.images, r.imported]), [
    ['bundle-no-extension', ['reg.local/gz:1'], true],
    ['plain.tar', ['reg.local/plain:1'], true],
    ['zst.tar.zst', ['reg.local/zst:1'], true],
  ], 'the broken archive is skipped, not fatal');
  assert.deepEqual(ctr.calls().sort(), ['FAIL', 'reg.local/gz:1', 'reg.local/plain:1', 'reg.local/zst:1']);

  // Restart: nothing changed, nothing is imported again (the broken file is retried).
  const second = await importImageDir(opts);
  assert.ok(second.every((r) => !r.imported));
  assert.equal(ctr.calls().length, 5);

  // A replaced file (new mtime) and an image that vanished from the runtime are imported again.
  utimesSync(join(dir, 'plain.tar'), new Date(), new Date(Date.now() + 5_000));
  present.delete('reg.local/zst:1');
  const third = await importImageDir(opts);
  assert.deepEqual(third.filter((r) => r.imported).map((r) => r.images[0]).sort(), ['reg.local/plain:1', 'reg.local/zst:1']);
});

test('containerd config: own paths, CRI settings this host needs, overlayfs, cgroupfs, CNI dirs', () => {
  const paths = containerdPaths('/var/lib/skiff');
  assert.equal(paths.socket, '/var/lib/skiff/agent/containerd/containerd.sock');
  assert.notEqual(containerdPaths('/var/lib/skiff2').state, paths.state, 'two agents of one host never share runtime state');
  const toml = renderContainerdConfig({
    paths, sandboxImage: 'skiff.local/pause:3.9', cniBinDir: '/usr/lib/cni', cniConfDir: '/var/lib/skiff/agent/cni/conf',
  });
  const expect = [
    /^version = 2$/m,
    /^root = "\/var\/lib\/skiff\/agent\/containerd\/root"$/m,
    // Runtime state on /run (a tmpfs: a reboot clears it), one directory per data dir.
    /^state = "\/run\/skiff\/containerd-[0-9a-f]{16}"$/m,
    /^ {2}Root = "\/run\/skiff\/containerd-[0-9a-f]{16}\/runc"$/m,
    /^\[grpc\]\n {2}address = "\/var\/lib\/skiff\/agent\/containerd\/containerd.sock"$/m,
    /^ {2}restrict_oom_score_adj = true$/m,
    /^ {2}sandbox_image = "skiff.local\/pause:3.9"$/m,
    /^ {2}snapshotter = "overlayfs"$/m,
    /^ {2}SystemdCgroup = false$/m,
    /^ {2}bin_dir = "\/usr\/lib\/cni"$/m,
    /^ {2}conf_dir = "\/var\/lib\/skiff\/agent\/cni\/conf"$/m,
    /^ {2}config_path = ""$/m,
    /^disabled_plugins = \[.*"io.containerd.snapshotter.v1.aufs".*\]$/m,
  ];
  for (const re of expect) assert.match(toml, re);
  // containerd 1.6's tasks service (and with it CRI) needs the v1 runtime plugin loaded.
  assert.doesNotMatch(toml, /io\.containerd\.runtime\.v1\.linux/);
});

test('bridge CNI conflist: bridge, host-local in the pod CIDR with a private IPAM dir, portmap', (t) => {
  const dataDir = tempDir(t);
  const confDir = join(dataDir, 'agent', 'cni', 'conf');
  const file = writeBridgeCniConfig(confDir, '10.42.0.0/24', 'skiff0');
  assert.equal(file, join(confDir, CNI_CONFLIST_FILE));
  assert.deepEqual(readdirSync(confDir), [CNI_CONFLIST_FILE], 'no temp file left behind');
  const conf = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(conf.cniVersion, '1.0.0');
  const [bridge, portmap] = conf.plugins;
  assert.equal(bridge.type, 'bridge');
  assert.equal(bridge.bridge, 'skiff0');
  assert.equal(bridge.isGateway, true);
  assert.deepEqual(bridge.ipam.ranges, [[{ subnet: '10.42.0.0/24' }]]);
  assert.equal(bridge.ipam.dataDir, join(dataDir, 'agent', 'cni', 'ipam'));
  assert.deepEqual(portmap, { type: 'portmap', capabilities: { portMappings: true } });
  const bare = JSON.parse(readFileSync(writeBridgeCniConfig(confDir, '10.1.0.0/16', 'b', { ipMasq: false, portMap: false }), 'utf8'));
  assert.equal(bare.plugins.length, 1);
  assert.equal(bare.plugins[0].ipMasq, false);
  assert.throws(() => writeBridgeCniConfig(confDir, '10.1.0.0/16', 'a-very-long-bridge-name'), /15 characters/);
});
