// Pods as real containers: a real `skiff server` process, our own containerd with runc and the bridge
// CNI, and a PodManager fed by a watch of the pods bound to a test node (a stand-in for the agent's
// main loop, which the lead assembles). The PodApi is ClientPodApi over HttpClient with the admin's
// credentials (a stand-in for the node's own). Checks env/args/logs, init order, volumes and their
// updates, liveness restarts, crash-loop back-off, privileged /dev, graceful deletion with preStop,
// and adoption by a restarted manager. Everything is removed afterwards, also on failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ContainerdSupervisor } from '../../src/agent/runtime/containerd.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { writeBridgeCniConfig } from '../../src/agent/runtime/cni-config.js';
import { ensurePauseImage, importImageDir, imagesDir } from '../../src/agent/runtime/images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';
import { HttpClient } from '../../src/client/http.js';
import { Resources, type WatchHandle } from '../../src/client/types.js';
import { PodManager } from '../../src/agent/pods/pod-manager.js';
import { ClientPodApi, type Obj } from '../../src/agent/pods/pod-api.js';
import { NODE_LABEL, POD_UID_LABEL } from '../../src/agent/pods/labels.js';
import { startServer } from '../helpers/cluster.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';

const run = randomBytes(3).toString('hex');
const NODE = `pods-${run}`;
const BRIDGE = `skpd${run}`;
const POD_CIDR = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}.0/24`;
const CGROUP_ROOT = `/skiff-e2e-pods-${run}`;
const NODE_IP = '192.0.2.10';
const NS = 'default';

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd, mounts and network namespaces need it)');
  for (const bin of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'ip', 'mount', 'umount']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(`${bin} on PATH (apt-get install containerd runc iproute2)`);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge (apt-get install containernetworking-plugins)');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (apt-get install busybox-static)');
  return missing;
}

// Short: containerd's socket path must fit a unix socket address.
const dataDir = mkdtempSync('/tmp/skiff-pods-');
const hostDir = join(dataDir, 'host');
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
    // Through CRI first, which also runs CNI DEL (IPs, veths)...
    for (const s of await c.listPodSandbox({ labelSelector: { [NODE_LABEL]: NODE } })) {
      await c.stopPodSandbox(s.id).catch(() => undefined);
      await c.removePodSandbox(s.id).catch(() => undefined);
    }
  } catch {
    // containerd gone or wedged: the teardown below does it the hard way
  } finally {
    c.close();
  }
  cri?.close();
  await supervisor?.stop().catch(() => undefined);
  // ...then unconditionally: shims and their processes, containerd, tmpfs mounts, cgroups, the data dir.
  await teardownRuntime({ dataDir, cgroupParents: [CGROUP_ROOT], removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function startManager(c: CriClient, api: ClientPodApi): PodManager {
  return new PodManager({
    cri: c, dataDir, nodeName: NODE, nodeIp: NODE_IP, clusterDns: '10.43.0.10', clusterDomain: 'cluster.local', api,
    cgroupRoot: CGROUP_ROOT, crashBackoff: { initialMs: 1_000, maxMs: 30_000 }, imagePullBackoff: { initialMs: 1_000, maxMs: 8_000 },
    resyncMs: 1_000, relistMs: 300,
  });
}

/** The agent's main loop, reduced to what the pods need: every change of a pod bound to NODE goes to the manager. */
function watchPods(m: PodManager): WatchHandle {
  return client!.watch<Obj & { metadata: any }>(Resources.pods, undefined, '0', (e) => {
    if (e.type === 'ADDED' || e.type === 'MODIFIED') m.sync(e.object);
    else if (e.type === 'DELETED') void m.remove(e.object.metadata.uid);
  }, { fieldSelector: `spec.nodeName=${NODE}` });
}

function pod(name: string, spec: Obj, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: { app: name, ...labels } },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, ...spec },
  };
}

const getPod = (name: string) => client!.get<Obj & { metadata: any }>(Resources.pods, NS, name);

async function runningContainer(name: string, container: string): Promise<string> {
  const p = await eventually(`${name}/${container} running`, async () => {
    const x = await getPod(name);
    const cs = x?.status?.containerStatuses?.find((s: Obj) => s.name === container);
    return cs?.state?.running && cs.containerID ? x : undefined;
  });
  return p.status.containerStatuses.find((s: Obj) => s.name === container).containerID.replace('containerd://', '');
}

async function exec(id: string, cmd: string[]): Promise<string> {
  const r = await cri!.execSync(id, cmd, 10);
  assert.equal(r.exitCode, 0, `${cmd.join(' ')}: ${r.stderr}`);
  return r.stdout.toString('utf8').trim();
}

test('pods through CRI on a real containerd', async (t) => {
  const missing = missingPrerequisites();
  assert.deepEqual(missing, [], `this end-to-end test needs: ${missing.join('; ')}`);

  mkdirSync(imagesDir(dataDir), { recursive: true });
  mkdirSync(hostDir, { recursive: true });
  writeBusyboxImage(imagesDir(dataDir), 'busybox.tar');
  writeBridgeCniConfig(join(dataDir, 'agent', 'cni', 'conf'), POD_CIDR, BRIDGE, { ipMasq: false, portMap: false });
  supervisor = new ContainerdSupervisor({ dataDir });
  const [server] = await Promise.all([startServer(), supervisor.start()]);
  cri = new CriClient(supervisor.endpoint, { timeoutMs: 20_000 });
  await ensurePauseImage({ dataDir, containerdSocket: supervisor.endpoint, cri });
  await importImageDir({ dataDir, containerdSocket: supervisor.endpoint, cri });
  client = HttpClient.fromKubeconfig(server.kubeconfigPath);
  const api = new ClientPodApi(client, NODE);

  await client.create(Resources.configMaps, NS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { greeting: 'hello', 'file.txt': 'v1' } });
  await client.create(Resources.serviceAccounts, NS, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot' } });
  await client.create(Resources.secrets, NS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sec' }, data: { password: Buffer.from('s3cret').toString('base64') } });

  // The Node, as the agent registers it: the API server leaves graceful pod deletion to a node that exists.
  await client.create(Resources.nodes, undefined, {
    apiVersion: 'v1', kind: 'Node', metadata: { name: NODE },
    status: { addresses: [{ type: 'InternalIP', address: NODE_IP }], conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready' }] },
  });
  manager = startManager(cri, api);
  watch = watchPods(manager);
  // Before the server goes (its hook runs later): a manager syncing against a closed server only logs noise.
  t.after(async () => { watch?.stop(); await manager?.stop(); });

  const sleepForever = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'];
  const privDevice = ['kmsg', 'mem', 'loop0', 'vda', 'sda', 'fuse'].find((d) => existsSync(`/dev/${d}`));
  // All pods at once: their start-ups overlap, and the checks below take them in turn.
  const pods: Obj[] = [
    pod('basics', {
      initContainers: [{ name: 'init', image: TEST_IMAGE, command: ['sh', '-c', 'echo init-done > /work/marker'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
      containers: [{
        name: 'main', image: TEST_IMAGE, command: ['sh', '-c'],
        // $(GREETING) is expanded by the agent; $(cat ...) names no env var, so the shell runs it.
        args: ['echo "$(GREETING) $POD_NAME $NODE_NAME $PASSWORD $CFG_greeting $MEM_MI $(cat /work/marker)"; exec sleep 3600'],
        env: [
          { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'sec', key: 'password' } } },
          { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          { name: 'ABSENT', valueFrom: { configMapKeyRef: { name: 'nope', key: 'x', optional: true } } },
        ],
        envFrom: [{ prefix: 'CFG_', configMapRef: { name: 'cfg' } }],
        resources: { limits: { memory: '64Mi', cpu: '250m' } },
        volumeMounts: [{ name: 'work', mountPath: '/work' }],
      }],
      volumes: [{ name: 'work', emptyDir: {} }],
    }),
    pod('vols', {
      serviceAccountName: 'robot',
      containers: [
        { name: 'writer', image: TEST_IMAGE, command: ['sh', '-c', 'echo shared > /shared/x; trap "exit 0" TERM; while true; do sleep 1; done'], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] },
        {
          name: 'reader', image: TEST_IMAGE, command: sleepForever, volumeMounts: [
            { name: 'shared', mountPath: '/shared' }, { name: 'cfg', mountPath: '/cfg' }, { name: 'sec', mountPath: '/sec' },
            { name: 'info', mountPath: '/info' }, { name: 'mem', mountPath: '/mem' }, { name: 'api', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          ],
        },
      ],
      volumes: [
        { name: 'shared', emptyDir: {} },
        { name: 'mem', emptyDir: { medium: 'Memory' } },
        { name: 'cfg', configMap: { name: 'cfg' } },
        { name: 'sec', secret: { secretName: 'sec', defaultMode: 0o400 } },
        { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
        { name: 'api', projected: { sources: [
          { serviceAccountToken: { path: 'token', expirationSeconds: 600 } },
          { configMap: { name: 'cfg', items: [{ key: 'greeting', path: 'greeting' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
        ] } },
      ],
    }),
    pod('liveness', {
      containers: [{
        name: 'main', image: TEST_IMAGE, command: sleepForever,
        livenessProbe: { exec: { command: ['test', '-f', '/tmp/never'] }, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 1 },
      }],
    }),
    pod('crash', { containers: [{ name: 'main', image: TEST_IMAGE, command: ['sh', '-c', 'echo crashing; exit 3'] }] }),
    pod('priv', {
      containers: [
        { name: 'priv', image: TEST_IMAGE, command: sleepForever, securityContext: { privileged: true } },
        { name: 'plain', image: TEST_IMAGE, command: sleepForever },
      ],
    }),
    pod('graceful', {
      terminationGracePeriodSeconds: 10,
      containers: [{
        name: 'main', image: TEST_IMAGE,
        command: ['sh', '-c', 'trap "echo term >> /host/log; exit 0" TERM; while true; do sleep 1; done'],
        lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo prestop >> /host/log'] } } },
        volumeMounts: [{ name: 'host', mountPath: '/host' }],
      }],
      volumes: [{ name: 'host', hostPath: { path: join(hostDir, 'graceful'), type: 'DirectoryOrCreate' } }],
    }),
    pod('once', {
      containers: [{ name: 'main', image: TEST_IMAGE, command: ['sh', '-c', 'if [ -f /data/ran ]; then trap "exit 0" TERM; while true; do sleep 1; done; else touch /data/ran; exit 1; fi'], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', emptyDir: {} }],
    }),
    pod('images', {
      containers: [
        { name: 'never', image: 'skiff.local/absent:1', imagePullPolicy: 'Never', command: sleepForever },
        // Nothing listens on port 1: the pull fails at once, without the internet.
        { name: 'pull', image: '127.0.0.1:1/absent:1', command: sleepForever },
      ],
    }),
    pod('orphan', { containers: [{ name: 'main', image: TEST_IMAGE, command: sleepForever }] }),
  ];
  for (const p of pods) await client.create(Resources.pods, NS, p as any);

  await t.test('a pod runs after its init container, with env, args and resources, and logs', async () => {
    const id = await runningContainer('basics', 'main');
    const p = (await getPod('basics'))!;
    const logDir = join(dataDir, 'agent', 'logs', 'pods', `${NS}_basics_${p.metadata.uid}`);
    const line = await eventually('the greeting in the log', () => {
      const f = join(logDir, 'main', '0.log');
      return existsSync(f) ? readFileSync(f, 'utf8').split('\n').find((l) => l.includes(' stdout F ')) : undefined;
    });
    assert.match(line, new RegExp(` stdout F hello basics ${NODE} s3cret hello 64 init-done$`));
    assert.equal(await exec(id, ['cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes']), String(64 * 1024 * 1024));
    assert.equal(await exec(id, ['cat', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us']), '25000');
    assert.equal(await exec(id, ['sh', '-c', 'echo ${ABSENT-unset}']), 'unset');
    // Status, as kubectl shows it.
    const s = await eventually('Ready', async () => {
      const st = (await getPod('basics'))?.status;
      return st?.conditions?.find((c: Obj) => c.type === 'Ready')?.status === 'True' ? st : undefined;
    });
    assert.equal(s.phase, 'Running');
    assert.equal(s.hostIP, NODE_IP);
    assert.ok(s.podIP && s.podIP.startsWith(POD_CIDR.split('.').slice(0, 3).join('.')), `pod IP ${s.podIP} in ${POD_CIDR}`);
    assert.deepEqual(s.podIPs, [{ ip: s.podIP }]);
    assert.ok(s.startTime);
    assert.deepEqual(s.conditions.map((c: Obj) => `${c.type}=${c.status}`).sort(),
      ['ContainersReady=True', 'Initialized=True', 'PodReadyToStartContainers=True', 'PodScheduled=True', 'Ready=True']);
    const init = s.initContainerStatuses[0];
    assert.equal(init.state.terminated.reason, 'Completed');
    assert.equal(init.state.terminated.exitCode, 0);
    const main = s.containerStatuses[0];
    assert.equal(main.ready, true);
    assert.equal(main.started, true);
    assert.equal(main.restartCount, 0);
    assert.match(main.containerID, /^containerd:\/\/[0-9a-f]{64}$/);
    assert.ok(main.imageID, 'imageID set');
    assert.ok(Date.parse(init.state.terminated.finishedAt) <= Date.parse(main.state.running.startedAt), 'init finished before main started');
    assert.equal(s.qosClass, 'Burstable');
    const events = await client!.list(Resources.events, NS, { fieldSelector: `involvedObject.name=basics` });
    const reasons = new Set(events.items.map((e: Obj) => e.reason));
    for (const r of ['Pulled', 'Created', 'Started']) assert.ok(reasons.has(r), `event ${r} in ${[...reasons]}`);
  });

  await t.test('a crashing container goes into CrashLoopBackOff with growing delays', async () => {
    // Pods started together: by now the first back-offs may be over; two successive delays must grow.
    const seen: string[] = [];
    const delays = () => seen.map((m) => Number(/^back-off (\d+)s /.exec(m)?.[1]));
    await eventually('two back-off delays', async () => {
      const w = (await getPod('crash'))?.status?.containerStatuses?.[0]?.state?.waiting;
      if (w?.reason === 'CrashLoopBackOff' && seen.at(-1) !== w.message) seen.push(w.message);
      return seen.length >= 2 ? true : undefined;
    }, 120_000);   // back-offs of 10, 20, 40 s: two successive ones can take a minute past the first
    assert.match(seen[0]!, /^back-off \d+s restarting failed container=main pod=crash_default\([0-9a-f-]+\)$/);
    const [a, b] = delays();
    assert.ok(a! >= 1 && b === a! * 2, `delays double: ${seen.join(' | ')}`);
    const p = (await getPod('crash'))!;
    const cs = p.status.containerStatuses[0];
    assert.ok(cs.restartCount >= 2, `restartCount ${cs.restartCount}`);
    assert.equal(cs.lastState.terminated.exitCode, 3);
    assert.equal(cs.lastState.terminated.reason, 'Error');
    assert.equal(p.status.phase, 'Running');
    // Events are sent apart from the pod's status (best effort, as the kubelet's): the status may come first.
    await eventually('a BackOff event', async () => {
      const events = await client!.list(Resources.events, NS, { fieldSelector: 'involvedObject.name=crash' });
      return events.items.some((e: Obj) => e.reason === 'BackOff') || undefined;
    }, 30_000);
  });

  await t.test('volumes: emptyDir shared by two containers, configMap (updated in place), secret, downwardAPI, tmpfs, projected SA token', async () => {
    const reader = await runningContainer('vols', 'reader');
    await eventually('writer output visible to reader', async () => (await exec(reader, ['cat', '/shared/x'])) === 'shared');
    assert.equal(await exec(reader, ['cat', '/cfg/file.txt']), 'v1');
    assert.equal(await exec(reader, ['cat', '/sec/password']), 's3cret');
    assert.equal(await exec(reader, ['stat', '-L', '-c', '%a', '/sec/password']), '400');
    assert.equal(await exec(reader, ['cat', '/info/labels']), 'app="vols"');
    assert.match(await exec(reader, ['sh', '-c', 'grep " /mem " /proc/mounts']), /^tmpfs /);
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
    assert.match(await exec(reader, ['cat', `${sa}/token`]), /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a bound service-account JWT');
    assert.equal(await exec(reader, ['cat', `${sa}/namespace`]), NS);
    assert.equal(await exec(reader, ['cat', `${sa}/greeting`]), 'hello');
    assert.match(await exec(reader, ['sh', '-c', 'touch /cfg/x 2>&1 || echo read-only']), /read-only/i);
    const cm = (await client!.get<Obj & { metadata: any }>(Resources.configMaps, NS, 'cfg'))!;
    await client!.update(Resources.configMaps, NS, { ...cm, data: { ...cm.data, 'file.txt': 'v2' } });
    await eventually('configMap update in the volume', async () => (await exec(reader, ['cat', '/cfg/file.txt'])) === 'v2', 10_000);
  });

  await t.test('image pull policy: ErrImageNeverPull; a failed pull is ErrImagePull, then ImagePullBackOff', async () => {
    const seen = new Set<string>();
    await eventually('both waiting reasons of the pulled image', async () => {
      const st = (await getPod('images'))?.status?.containerStatuses ?? [];
      const never = st.find((c: Obj) => c.name === 'never')?.state?.waiting;
      const pull = st.find((c: Obj) => c.name === 'pull')?.state?.waiting;
      if (never) assert.equal(never.reason, 'ErrImageNeverPull');
      if (pull) seen.add(pull.reason);
      return never && seen.has('ErrImagePull') && seen.has('ImagePullBackOff') ? true : undefined;
    }, 15_000);
    const events = await client!.list(Resources.events, NS, { fieldSelector: 'involvedObject.name=images' });
    assert.ok(events.items.some((e: Obj) => e.reason === 'Failed' && String(e.message).startsWith('Failed to pull image "127.0.0.1:1/absent:1"')));
  });

  await t.test('a failing liveness probe restarts the container and counts the restart', async () => {
    const s = await eventually('restartCount >= 1', async () => {
      const cs = (await getPod('liveness'))?.status?.containerStatuses?.[0];
      return cs?.restartCount >= 1 ? cs : undefined;
    }, 20_000);
    assert.ok(s.lastState.terminated, `lastState: ${JSON.stringify(s.lastState)}`);
    const events = await client!.list(Resources.events, NS, { fieldSelector: 'involvedObject.name=liveness' });
    const unhealthy = events.items.find((e: Obj) => e.reason === 'Unhealthy');
    assert.match(String(unhealthy?.message ?? ''), /^Liveness probe failed/);
    assert.ok(events.items.some((e: Obj) => e.reason === 'Killing' && /failed liveness probe, will be restarted/.test(e.message)));
  });

  await t.test('a privileged container sees the host\'s /dev devices, an unprivileged one does not', async (st) => {
    if (!privDevice) return st.skip('no well-known device in the host /dev');
    const priv = await runningContainer('priv', 'priv');
    const plain = await runningContainer('priv', 'plain');
    assert.match(await exec(priv, ['ls', '/dev']), new RegExp(`(^|\\n)${privDevice}(\\n|$)`));
    assert.doesNotMatch(await exec(plain, ['ls', '/dev']), new RegExp(`(^|\\n)${privDevice}(\\n|$)`));
  });

  await t.test('a graceful delete runs preStop, then SIGTERM, removes the sandbox and deletes the pod', async () => {
    await runningContainer('graceful', 'main');
    const uid = (await getPod('graceful'))!.metadata.uid;
    await client!.delete(Resources.pods, NS, 'graceful', { gracePeriodSeconds: 10 });
    await eventually('pod gone from the API', async () => (await getPod('graceful')) === undefined ? true : undefined, 20_000);
    assert.deepEqual(readFileSync(join(hostDir, 'graceful', 'log'), 'utf8').split('\n').filter(Boolean), ['prestop', 'term']);
    assert.deepEqual(await cri!.listPodSandbox({ labelSelector: { [POD_UID_LABEL]: uid } }), []);
    assert.equal(existsSync(join(dataDir, 'agent', 'pods', uid)), false, 'pod dir removed');
  });

  await t.test('a restarted manager adopts running containers and removes the sandboxes of deleted pods', async () => {
    const once = await eventually('once restarted once and running', async () => {
      const cs = (await getPod('once'))?.status?.containerStatuses?.[0];
      return cs?.restartCount === 1 && cs.state.running ? cs : undefined;
    }, 20_000);
    const basics = (await getPod('basics'))!.status.containerStatuses[0];
    const orphanUid = (await getPod('orphan'))!.metadata.uid;
    await runningContainer('orphan', 'main');

    // The agent "dies": no more syncs; meanwhile the orphan is force-deleted from the API.
    watch!.stop();
    await manager!.stop();
    await client!.delete(Resources.pods, NS, 'orphan', { gracePeriodSeconds: 0 });
    assert.equal((await cri!.listPodSandbox({ labelSelector: { [POD_UID_LABEL]: orphanUid } })).length, 1);

    manager = startManager(cri!, api);
    await manager.adopt();
    const list = await client!.list(Resources.pods, undefined, { fieldSelector: `spec.nodeName=${NODE}` });
    await manager.reconcile(list.items);
    watch = watchPods(manager);
    assert.deepEqual(await cri!.listPodSandbox({ labelSelector: { [POD_UID_LABEL]: orphanUid } }), [], 'orphan sandbox removed');

    await new Promise((r) => setTimeout(r, 1_500));   // a few syncs and relists of the new manager
    for (const [name, before] of [['once', once], ['basics', basics]] as const) {
      const cs = (await getPod(name))!.status.containerStatuses[0];
      assert.equal(cs.containerID, before.containerID, `${name}: same container`);
      assert.equal(cs.restartCount, before.restartCount, `${name}: restartCount kept`);
      assert.ok(cs.state.running, `${name}: still running`);
    }
    const c = await cri!.listContainers({ labelSelector: { [NODE_LABEL]: NODE, 'io.kubernetes.pod.name': 'basics', 'io.kubernetes.container.name': 'main' } });
    assert.equal(c.length, 1, 'no duplicate container');
    const podDirs = readdirSync(join(dataDir, 'agent', 'pods'));
    assert.ok(!podDirs.includes(orphanUid), 'orphan pod dir removed');
    assert.ok(podDirs.includes((await getPod('once'))!.metadata.uid), 'live pod dirs kept');
  });
});
