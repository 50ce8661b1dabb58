// The agent's runtime layer against a real containerd (Debian's 1.6 + runc + CNI plugins): our own
// supervised containerd, images imported offline from the images folder (a multi-arch OCI index and a
// gzipped docker archive), a pod sandbox with an IP from the bridge CNI, a container whose output
// reaches its log, ExecSync, and the property the whole design hangs on: `kill -9` of the supervising
// process leaves containerd and the containers running, and the next supervisor adopts them.
// Everything is torn down afterwards, also on failure: containers, shims, containerd, mounts, the
// bridge, cgroups and the temp dir.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ContainerdSupervisor } from '../../src/agent/runtime/containerd.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { writeBridgeCniConfig } from '../../src/agent/runtime/cni-config.js';
import { imagesDir, PAUSE_IMAGE } from '../../src/agent/runtime/images.js';
import { nodePlatform } from '../../src/agent/runtime/oci-image-builder.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import type { PodSandboxConfig } from '../../src/agent/runtime/cri-types.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = randomBytes(3).toString('hex');
const BRIDGE = `skrt${run}`;
const POD_CIDR = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}.0/24`;
const CGROUP_PARENT = `/skiff-e2e-${run}`;
const DOCKER_IMAGE = 'skiff.local/busybox:docker';

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd, mounts and network namespaces need it)');
  for (const bin of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'ip', 'umount']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(`${bin} on PATH (apt-get install containerd runc iproute2)`);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge (apt-get install containernetworking-plugins)');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (apt-get install busybox-static)');
  return missing;
}

// A short path: containerd's socket must fit in a unix socket address (107 bytes).
const dataDir = mkdtempSync('/tmp/skiff-rt-');
let child: ChildProcess | undefined;
const supervisors: ContainerdSupervisor[] = [];
const clients: CriClient[] = [];

after(async () => {
  child?.kill('SIGKILL');
  for (const c of clients) c.close();
  // Best effort through CRI first (it also runs CNI DEL, releasing IPs and veths)...
  const cri = new CriClient(join(dataDir, 'agent', 'containerd', 'containerd.sock'), { timeoutMs: 5_000 });
  try {
    for (const c of await cri.listContainers({ labelSelector: { 'skiff-e2e': run } })) {
      await cri.stopContainer(c.id, 0).catch(() => undefined);
      await cri.removeContainer(c.id).catch(() => undefined);
    }
    for (const s of await cri.listPodSandbox({ labelSelector: { 'skiff-e2e': run } })) {
      await cri.stopPodSandbox(s.id).catch(() => undefined);
      await cri.removePodSandbox(s.id).catch(() => undefined);
    }
  } catch {
    // containerd is gone or wedged: the teardown below does it the hard way
  } finally {
    cri.close();
  }
  for (const s of supervisors) await s.stop().catch(() => undefined);
  // ...then unconditionally: shims and their processes, containerd, mounts, cgroups, the data dir.
  await teardownRuntime({ dataDir, cgroupParents: [CGROUP_PARENT], removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

/** Runs a supervisor in its own Node process (so the test can kill -9 it) and resolves with what it printed. */
function startSupervisorProcess(): Promise<{ containerdPid: number; images: string[] }> {
  const script = `
    const { ContainerdSupervisor } = await import(${JSON.stringify(join(REPO_ROOT, 'src/agent/runtime/containerd.ts'))});
    const { CriClient } = await import(${JSON.stringify(join(REPO_ROOT, 'src/agent/runtime/cri-client.ts'))});
    const images = await import(${JSON.stringify(join(REPO_ROOT, 'src/agent/runtime/images.ts'))});
    const dataDir = process.env.DATA_DIR;
    const sup = new ContainerdSupervisor({ dataDir });
    await sup.start();
    const cri = new CriClient(sup.endpoint);
    await images.ensurePauseImage({ dataDir, containerdSocket: sup.endpoint, cri });
    const imported = await images.importImageDir({ dataDir, containerdSocket: sup.endpoint, cri });
    console.log(JSON.stringify({ containerdPid: sup.pid, images: imported.flatMap((i) => i.images) }));
    setInterval(() => {}, 1 << 30);
  `;
  child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATA_DIR: dataDir, SKIFF_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`supervisor process not ready in 30 s:\n${stderr}`)), 30_000);
    createInterface({ input: child!.stdout! }).once('line', (line) => { clearTimeout(timer); resolve(JSON.parse(line)); });
    child!.once('exit', (code) => { clearTimeout(timer); reject(new Error(`supervisor process exited (${code}):\n${stderr}`)); });
  });
}

function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ipInCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const [base, bits] = cidr.split('/');
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(ip) & mask) === (toInt(base!) & mask);
}

test('containerd runtime: images offline, sandbox with IP, container, logs, exec, survives kill -9 of the agent', async (t) => {
  const missing = missingPrerequisites();
  assert.deepEqual(missing, [], `this end-to-end test needs: ${missing.join('; ')}`);

  const images = imagesDir(dataDir);
  mkdirSync(images, { recursive: true });
  // Names deliberately not *.tar: the folder takes any file name, the format is sniffed.
  writeBusyboxImage(images, 'busybox-multiarch', { multiArch: true });
  writeBusyboxImage(images, 'busybox-docker.tgz', { name: DOCKER_IMAGE, format: 'docker', gzip: true });
  writeBridgeCniConfig(join(dataDir, 'agent', 'cni', 'conf'), POD_CIDR, BRIDGE, { ipMasq: false, portMap: false });

  const first = await startSupervisorProcess();
  assert.ok(pidAlive(first.containerdPid), 'containerd runs');
  assert.deepEqual(first.images.sort(), [DOCKER_IMAGE, TEST_IMAGE].sort());
  const cri = new CriClient(join(dataDir, 'agent', 'containerd', 'containerd.sock'), { timeoutMs: 20_000 });
  clients.push(cri);

  await t.test('CRI sees the imported images; the multi-arch index resolved to this node', async () => {
    const v = await cri.version();
    assert.equal(v.runtimeName, 'containerd');
    assert.equal(v.runtimeApiVersion, 'v1');
    const tags = (await cri.listImages()).flatMap((i) => i.repoTags);
    for (const name of [TEST_IMAGE, DOCKER_IMAGE, PAUSE_IMAGE]) assert.ok(tags.includes(name), `${name} in ${tags}`);
    const spec = JSON.parse((await cri.imageStatusInfo(TEST_IMAGE)).info!).imageSpec;
    assert.equal(spec.architecture, nodePlatform().architecture);
  });

  const sandboxConfig: PodSandboxConfig = {
    metadata: { name: 'e2e', uid: `uid-${run}`, namespace: 'default', attempt: 0 },
    hostname: 'e2e',
    logDirectory: join(dataDir, 'pods', `default_e2e_uid-${run}`),
    labels: { 'skiff-e2e': run },
    linux: { cgroupParent: CGROUP_PARENT },
  };
  let sandboxId = '';
  let containerId = '';
  let containerPid = 0;

  await t.test('RunPodSandbox gets an IP from the bridge CNI', async () => {
    sandboxId = await cri.runPodSandbox(sandboxConfig);
    const st = await cri.podSandboxStatus(sandboxId);
    assert.equal(st.status?.state, 'SANDBOX_READY');
    const ip = st.status?.network?.ip ?? '';
    assert.ok(ipInCidr(ip, POD_CIDR), `pod IP ${ip} in ${POD_CIDR}`);
  });

  await t.test('a container runs, its PID exists, its output reaches the log file', async () => {
    containerId = await cri.createContainer(sandboxId, {
      metadata: { name: 'main', attempt: 0 },
      image: { image: TEST_IMAGE },
      command: ['sh', '-c', 'echo hello; sleep 1000'],
      logPath: 'main/0.log',
      labels: { 'skiff-e2e': run },
    }, sandboxConfig);
    await cri.startContainer(containerId);
    const st = await cri.containerStatus(containerId, true);
    assert.equal(st.status?.state, 'CONTAINER_RUNNING');
    containerPid = JSON.parse(st.info.info!).pid;
    assert.ok(containerPid > 0 && pidAlive(containerPid), `container pid ${containerPid} is a live process`);
    const logFile = join(sandboxConfig.logDirectory!, 'main', '0.log');
    const line = await eventually('hello in the container log', () => {
      const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      return text.split('\n').find((l) => l.endsWith(' stdout F hello'));
    });
    assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-][\d:]+) stdout F hello$/);
  });

  await t.test('ExecSync returns stdout, stderr and the exit code; Exec returns a streaming URL', async () => {
    const hi = await cri.execSync(containerId, ['echo', 'hi'], 10);
    assert.equal(hi.stdout.toString(), 'hi\n');
    assert.equal(hi.exitCode, 0);
    const fail = await cri.execSync(containerId, ['sh', '-c', 'echo oops >&2; exit 3'], 10);
    assert.equal(fail.exitCode, 3);
    assert.equal(fail.stderr.toString(), 'oops\n');
    const url = new URL(await cri.exec({ containerId, cmd: ['sh'], stdout: true }));
    assert.equal(url.hostname, '127.0.0.1');
    assert.ok(Number(url.port) > 0, `stream server on a real port: ${url}`);
    const stats = await cri.listContainerStats({ podSandboxId: sandboxId });
    assert.deepEqual(stats.map((s) => s.attributes?.id), [containerId]);
  });

  await t.test('kill -9 of the supervising process: containerd and the container live on, and are adopted', async () => {
    const proc = child!;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
    child = undefined;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(pidAlive(first.containerdPid), 'containerd survived');
    assert.ok(pidAlive(containerPid), 'the container survived');
    assert.equal((await cri.containerStatus(containerId)).status?.state, 'CONTAINER_RUNNING');

    const again = new ContainerdSupervisor({ dataDir });
    supervisors.push(again);
    await again.start();
    assert.equal(again.adopted, true, 'the new supervisor adopted the running containerd');
    assert.equal(again.pid, first.containerdPid, 'no second containerd');
    const st = await cri.containerStatus(containerId, true);
    assert.equal(st.status?.state, 'CONTAINER_RUNNING');
    assert.equal(JSON.parse(st.info.info!).pid, containerPid, 'same container process');
  });

  await t.test('stop and remove the container and the sandbox', async () => {
    await cri.stopContainer(containerId, 0);
    assert.equal((await cri.containerStatus(containerId)).status?.state, 'CONTAINER_EXITED');
    await eventually('container process gone', () => pidAlive(containerPid) ? undefined : true);
    await cri.removeContainer(containerId);
    await cri.stopPodSandbox(sandboxId);
    await cri.removePodSandbox(sandboxId);
    assert.deepEqual(await cri.listContainers({ labelSelector: { 'skiff-e2e': run } }), []);
    assert.deepEqual(await cri.listPodSandbox({ labelSelector: { 'skiff-e2e': run } }), []);
    await assert.rejects(cri.containerStatus(containerId), (err: Error & { code?: number }) => err.code === 5);
  });

  await t.test('a containerd that dies is restarted; stop() ends it', async () => {
    const sup = supervisors[0]!;
    const old = sup.pid!;
    process.kill(old, 'SIGKILL');
    const fresh = await eventually('a new containerd', () => (sup.pid && sup.pid !== old ? sup.pid : undefined), 15_000);
    await cri.waitReady(10_000);
    assert.ok(pidAlive(fresh));
    await sup.stop();
    assert.equal(pidAlive(fresh), false, 'containerd stopped');
  });
});
