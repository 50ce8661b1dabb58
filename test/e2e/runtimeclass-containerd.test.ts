// RuntimeClass on a real containerd (issue 10): the agent resolves a pod's RuntimeClass to its
// handler and passes it to CRI RunPodSandbox. containerd is configured with runc (default) and, only
// when /usr/bin/crun exists, a `crun` runtime. Here: a class with handler `runc` runs its pod; a class
// whose handler containerd does not know (crun when crun is not installed, or any made-up name)
// leaves the pod with a FailedCreatePodSandBox event that names the unknown handler; a class deleted
// before the sandbox starts gives the kubelet's not-found message. Everything is removed afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ContainerdSupervisor } from '../../src/agent/runtime/containerd.js';
import { containerdPaths } from '../../src/agent/runtime/containerd-config.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { writeBridgeCniConfig } from '../../src/agent/runtime/cni-config.js';
import { ensurePauseImage, importImageDir, imagesDir } from '../../src/agent/runtime/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { HttpClient } from '../../src/client/http.js';
import { Resources, type WatchHandle } from '../../src/client/types.js';
import { PodManager } from '../../src/agent/pods/pod-manager.js';
import { ClientPodApi, type Obj } from '../../src/agent/pods/pod-api.js';
import { NODE_LABEL } from '../../src/agent/pods/labels.js';
import { startServer } from '../helpers/cluster.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { eventually } from '../helpers/wait.js';

const run = randomBytes(3).toString('hex');
const NODE = `rcc-${run}`;
const BRIDGE = `skrc${run}`;
const POD_CIDR = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}.0/24`;
const CGROUP_ROOT = `/skiff-e2e-rc-${run}`;
const NS = 'default';
const RUNTIME_CLASSES = { group: 'node.k8s.io', version: 'v1', resource: 'runtimeclasses' };

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd, mounts and network namespaces need it)');
  for (const bin of ['containerd', 'runc', 'containerd-shim-runc-v2', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(`${bin} on PATH (apt-get install containerd runc iproute2)`);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge (apt-get install containernetworking-plugins)');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (apt-get install busybox-static)');
  return missing;
}

const dataDir = mkdtempSync('/tmp/skiff-rc-');
let supervisor: ContainerdSupervisor | undefined;
let cri: CriClient | undefined;
let manager: PodManager | undefined;
let watch: WatchHandle | undefined;
let client: HttpClient | undefined;

after(async () => {
  watch?.stop();
  await manager?.stop().catch(() => undefined);
  client?.close();
  const c = new CriClient(join(dataDir, 'agent', 'containerd', 'containerd.sock'), { timeoutMs: 5_000 });
  try {
    for (const s of await c.listPodSandbox({ labelSelector: { [NODE_LABEL]: NODE } })) {
      await c.stopPodSandbox(s.id).catch(() => undefined);
      await c.removePodSandbox(s.id).catch(() => undefined);
    }
  } catch {
    // containerd gone: the teardown below does it the hard way
  } finally {
    c.close();
  }
  cri?.close();
  await supervisor?.stop().catch(() => undefined);
  await teardownRuntime({ dataDir, cgroupParents: [CGROUP_ROOT], removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

const pod = (name: string, runtimeClassName: string): Obj & { metadata: any } => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS },
  spec: { nodeName: NODE, runtimeClassName, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TEST_IMAGE, command: ['sleep', '3600'] }] },
});

async function sandboxEvent(name: string): Promise<string> {
  return eventually(async () => {
    const list = await client!.list<Obj & { metadata: any }>(Resources.events, NS);
    const e = list.items.find((x) => x.involvedObject?.name === name && x.reason === 'FailedCreatePodSandBox');
    return e ? `${e.type} ${e.reason}: ${e.message}` : undefined;
  }, `FailedCreatePodSandBox event of ${name}`, 60_000);
}

test('RuntimeClass handlers reach CRI RunPodSandbox on a real containerd', async (t) => {
  const missing = missingPrerequisites();
  assert.deepEqual(missing, [], `this end-to-end test needs: ${missing.join('; ')}`);

  mkdirSync(imagesDir(dataDir), { recursive: true });
  writeBusyboxImage(imagesDir(dataDir), 'busybox.tar');
  writeBridgeCniConfig(join(dataDir, 'agent', 'cni', 'conf'), POD_CIDR, BRIDGE, { ipMasq: false, portMap: false });
  supervisor = new ContainerdSupervisor({ dataDir });
  const [server] = await Promise.all([startServer(), supervisor.start()]);
  cri = new CriClient(supervisor.endpoint, { timeoutMs: 20_000 });
  await ensurePauseImage({ dataDir, containerdSocket: supervisor.endpoint, cri });
  await importImageDir({ dataDir, containerdSocket: supervisor.endpoint, cri });

  // crun gets a runtime entry only when it is installed.
  const toml = readFileSync(containerdPaths(dataDir).config, 'utf8');
  assert.equal(/runtimes\.crun\]/.test(toml), existsSync('/usr/bin/crun'), 'crun runtime entry iff /usr/bin/crun exists');

  client = HttpClient.fromKubeconfig(server.kubeconfigPath);
  await client.create(Resources.nodes, undefined, {
    apiVersion: 'v1', kind: 'Node', metadata: { name: NODE },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.10' }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready' }] },
  });
  for (const [name, handler] of [['runc', 'runc'], ['crun', 'crun'], ['made-up', 'nosuchruntime'], ['gone', 'runc']]) {
    await client.create(RUNTIME_CLASSES, undefined, { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name }, handler });
  }
  manager = new PodManager({
    cri, dataDir, nodeName: NODE, nodeIp: '192.0.2.10', clusterDns: '10.43.0.10', clusterDomain: 'cluster.local',
    api: new ClientPodApi(client, NODE), cgroupRoot: CGROUP_ROOT, crashBackoff: { initialMs: 1_000, maxMs: 30_000 },
    imagePullBackoff: { initialMs: 1_000, maxMs: 8_000 }, resyncMs: 1_000, relistMs: 300,
  });
  const m = manager;
  watch = client.watch<Obj & { metadata: any }>(Resources.pods, undefined, '0', (e) => {
    if (e.type === 'ADDED' || e.type === 'MODIFIED') m.sync(e.object);
    else if (e.type === 'DELETED') void m.remove(e.object.metadata.uid);
  }, { fieldSelector: `spec.nodeName=${NODE}` });
  t.after(async () => { watch?.stop(); await manager?.stop(); });

  // Admitted while the class exists, then the class goes: the sandbox cannot be made.
  const gonePod = pod('uses-gone', 'gone');
  await client.create(Resources.pods, NS, gonePod);
  await client.delete(RUNTIME_CLASSES, undefined, 'gone');
  for (const p of [pod('uses-runc', 'runc'), pod('uses-made-up', 'made-up'), ...(existsSync('/usr/bin/crun') ? [] : [pod('uses-crun', 'crun')])]) {
    await client.create(Resources.pods, NS, p);
  }

  const running = await eventually(async () => {
    const p = await client!.get<Obj & { metadata: any }>(Resources.pods, NS, 'uses-runc');
    return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
  }, 'uses-runc running', 60_000);
  const sandbox = (await cri.listPodSandbox({ labelSelector: { [NODE_LABEL]: NODE } }))
    .find((s) => s.metadata?.name === 'uses-runc' && s.state === 'SANDBOX_READY');
  assert.ok(sandbox, 'a ready sandbox for uses-runc');
  assert.equal((await cri.podSandboxStatus(sandbox.id)).status?.runtimeHandler, 'runc');
  assert.ok(running.status.podIP);

  assert.match(await sandboxEvent('uses-made-up'), /^Warning FailedCreatePodSandBox: Failed to create pod sandbox: .*no runtime for "nosuchruntime" is configured/);
  if (!existsSync('/usr/bin/crun')) {
    assert.match(await sandboxEvent('uses-crun'), /Failed to create pod sandbox: .*no runtime for "crun" is configured/);
  }
  assert.match(await sandboxEvent('uses-gone'), /Failed to create pod sandbox: runtimeclass\.node\.k8s\.io "gone" not found/);
});
