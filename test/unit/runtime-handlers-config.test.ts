// containerd's runtime handlers for RuntimeClass: runc always (the default), crun only when its
// binary is installed, each with its own state directory beside runc's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerdPaths, installedRuntimes, renderContainerdConfig } from '../../src/agent/runtime/containerd-config.js';

const base = { paths: containerdPaths('/var/lib/skiff'), sandboxImage: 'skiff.local/pause:3.9', cniBinDir: '/usr/lib/cni', cniConfDir: '/c' };

test('crun is offered only when /usr/bin/crun exists', () => {
  assert.deepEqual(installedRuntimes(() => false), []);
  assert.deepEqual(installedRuntimes((p) => p === '/usr/bin/crun'), [{ name: 'crun', binary: '/usr/bin/crun' }]);
});

test('the config has a crun runtime entry iff it is given one; runc stays the default', () => {
  const without = renderContainerdConfig(base);
  assert.doesNotMatch(without, /runtimes\.crun/);
  const withCrun = renderContainerdConfig({ ...base, extraRuntimes: [{ name: 'crun', binary: '/usr/bin/crun' }] });
  assert.match(withCrun, /^ {2}default_runtime_name = "runc"$/m);
  assert.match(withCrun, /^\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.crun\]\n {2}runtime_type = "io\.containerd\.runc\.v2"$/m);
  assert.match(withCrun, /^ {2}BinaryName = "\/usr\/bin\/crun"$/m);
  assert.match(withCrun, /^ {2}Root = "\/run\/skiff\/containerd-[0-9a-f]{16}\/crun"$/m);
  // The rest of the config is unchanged.
  assert.equal(withCrun.replace(/\[plugins[^\n]*runtimes\.crun\][\s\S]*?(?=\[plugins[^\n]*\.cni\])/, ''), without);
});
