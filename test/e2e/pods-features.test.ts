// The pod features of issue 4 item 3 on a real node, driven with the real kubectl: a `skiff server`
// plus a `skiff agent` (own containerd, runc, bridge CNI) on this host. One batch of pods is created at
// once and checked in place: resources as cgroup limits and QoS class, securityContext (user/group,
// capabilities, read-only root, no_new_privs), hostNetwork/hostPID, emptyDir on tmpfs with a size
// limit, claims bound to hostPath and local PVs, a projected service-account token that authenticates,
// httpGet/tcpSocket/exec probes with startup gating liveness, env from resources and prefixed
// configMaps, workingDir, and the events with their container fieldPath. Everything the test starts
// is removed afterwards, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestServer } from '../helpers/cluster.js';
import { ok, runKubectl } from '../helpers/kubectl.js';
import { TEST_IMAGE } from '../helpers/images.js';
import { LOCAL_NODE_IP, localAgentRequirements, startLocalAgent, type LocalAgent } from '../helpers/local-agent.js';

// Names unique to the run (its PVs are cluster-wide); the node, bridge and pod network are the helper's.
const run = randomBytes(3).toString('hex');
const hostDir = mkdtempSync('/tmp/skiff-pf-vol-');
const cgroupV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
let node: LocalAgent;
let server: TestServer;
let NODE = '';
const eventually = <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 60_000) => node.eventually(fn, what, ms);
const k = (args: string[], input?: string) => node.k(args, input);
const getPod = async (name: string): Promise<any> => JSON.parse(await k(['get', 'pod', name, '-o', 'json']));
const sh = (pod: string, container: string, script: string) => server.kubectl(['exec', pod, '-c', container, '--', 'sh', '-c', script]);
const shOk = async (pod: string, container: string, script: string) => ok(await sh(pod, container, script), `exec in ${pod}/${container}`);
const condition = (pod: any, type: string) => pod.status?.conditions?.find((c: any) => c.type === type);
const containerStatus = (pod: any, name: string) => pod.status?.containerStatuses?.find((c: any) => c.name === name);

async function running(name: string): Promise<any> {
  let last: any;
  try {
    return await eventually(async () => {
      last = await getPod(name);
      return last.status?.phase === 'Running' && last.status.containerStatuses?.every((c: any) => c.state?.running) ? last : undefined;
    }, `pod ${name} Running`, 90_000);
  } catch (err) {
    const events = JSON.parse(await k(['get', 'events', '-o', 'json'])).items.filter((e: any) => e.involvedObject?.name === name);
    (err as Error).message += `\n--- pod status\n${JSON.stringify(last?.status, null, 1)}\n--- events\n${events.map((e: any) => `${e.reason}: ${e.message}`).join('\n')}`;
    throw err;
  }
}

function yamlDocs(objs: object[]): string {
  // kubectl reads JSON documents as YAML; one List keeps it a single apply.
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs });
}

const busybox = (name: string, script: string, extra: object = {}) => ({ name, image: TEST_IMAGE, command: ['sh', '-c', script], ...extra });
const pod = (name: string, spec: object) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { suite: 'pods-features' } },
  spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, ...spec },
});

before(async () => {
  const missing = localAgentRequirements();
  if (missing.length) throw new Error(`the pod features end-to-end test needs: ${missing.join(', ')}`);
  node = await startLocalAgent({ tag: 'feat', serverArgs: ['--horizontal-pod-autoscaler-sync-period', '2'] });
  server = node.server;
  NODE = node.nodeName;
  await k(['apply', '-f', '-'], yamlDocs(objects()));
});

after(async () => {
  await node?.stop();
  rmSync(hostDir, { recursive: true, force: true });
});

/** Everything the tests need, created in one apply so the pods start in parallel. */
function objects(): object[] {
  const localPath = join(hostDir, 'local');
  mkdirSync(localPath);
  const pv = (name: string, source: object, extra: object = {}) => ({
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `${name}-${run}` },
    spec: {
      capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', persistentVolumeReclaimPolicy: 'Retain',
      // Pre-bound both ways (claimRef here, volumeName on the claim).
      claimRef: { namespace: 'default', name },
      ...source, ...extra,
    },
  });
  const pvc = (name: string) => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name },
    spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'manual', volumeName: `${name}-${run}`, resources: { requests: { storage: '1Gi' } } },
  });
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'feat-env' }, data: { COLOR: 'blue', SIZE: 'xl' } },
    // Its variables (service links) reach containers started after it, as with the kubelet.
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'feat-svc' }, spec: { selector: { app: 'none' }, ports: [{ name: 'http', port: 8080 }] } },
    pv('claim-hostpath', { hostPath: { path: join(hostDir, 'hostpath'), type: 'DirectoryOrCreate' } }),
    pv('claim-local', { local: { path: localPath } }, {
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [NODE] }] }] } },
    }),
    pvc('claim-hostpath'),
    pvc('claim-local'),
    // No class named: the default `local-path` class provisions it on the node the pod is scheduled to.
    { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'claim-dynamic' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } } },
    { ...pod('dynamic', {
      nodeName: undefined,
      securityContext: { runAsUser: 1000 },
      volumes: [
        { name: 'data', persistentVolumeClaim: { claimName: 'claim-dynamic' } },
        { name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '8Mi' } } } } } },
      ],
      containers: [busybox('main', 'echo from-pod > /data/written; echo scratch > /scratch/written; exec sleep 3600', {
        volumeMounts: [{ name: 'data', mountPath: '/data' }, { name: 'scratch', mountPath: '/scratch' }],
      })],
    }) },
    pod('res', {
      containers: [busybox('main', 'exec sleep 3600', {
        workingDir: '/var/www',
        resources: { requests: { cpu: '250m', memory: '32Mi' }, limits: { cpu: '500m', memory: '64Mi' } },
        env: [
          { name: 'MEM_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
          { name: 'MEM_LIMIT_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
          { name: 'CPU_REQ_M', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
        ],
        envFrom: [{ configMapRef: { name: 'feat-env' }, prefix: 'CM_' }],
      })],
    }),
    // Its memory emptyDir has no sizeLimit: the tmpfs gets the pod's memory limit.
    pod('guaranteed', {
      volumes: [{ name: 'mem', emptyDir: { medium: 'Memory' } }],
      containers: [busybox('main', 'exec sleep 3600', {
        resources: { limits: { cpu: '100m', memory: '32Mi' } }, volumeMounts: [{ name: 'mem', mountPath: '/mem' }],
      })],
    }),
    pod('besteffort', { containers: [busybox('main', 'exec sleep 3600')] }),
    pod('sec', {
      // runAsGroup only together with runAsUser: CRI requires it (containerd refuses a group alone, as with the kubelet).
      securityContext: { runAsUser: 1000, runAsGroup: 3000 },
      volumes: [{ name: 'scratch', emptyDir: {} }, { name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '8Mi' } }],
      containers: [
        busybox('user', 'exec sleep 3600', {
          securityContext: { runAsUser: 1001, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
          volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }, { name: 'mem', mountPath: '/mem' }],
        }),
        // Capabilities as root: a non-root user's effective set is emptied by execve (no ambient caps).
        busybox('caps', 'exec sleep 3600', { securityContext: { runAsUser: 0, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } } }),
      ],
    }),
    pod('host', { hostNetwork: true, hostPID: true, containers: [busybox('main', 'exec sleep 3600')] }),
    pod('claims', {
      volumes: [
        { name: 'hp', persistentVolumeClaim: { claimName: 'claim-hostpath' } },
        { name: 'local', persistentVolumeClaim: { claimName: 'claim-local' } },
      ],
      containers: [busybox('main', 'echo from-pod > /hp/written; echo from-pod > /local/written; exec sleep 3600', {
        volumeMounts: [{ name: 'hp', mountPath: '/hp' }, { name: 'local', mountPath: '/local' }],
      })],
    }),
    // No volume of its own: ServiceAccount admission adds kube-api-access-*, the publisher kube-root-ca.crt.
    pod('sa', { containers: [busybox('main', 'exec sleep 3600')] }),
    pod('nosa', { automountServiceAccountToken: false, containers: [busybox('main', 'exec sleep 3600')] }),
    // httpd starts after 3 s; readiness (httpGet) must stay false until it answers.
    pod('web', {
      volumes: [{ name: 'www', emptyDir: {} }],
      containers: [busybox('main', 'echo ok > /www/ready; sleep 3; exec httpd -f -p 8080 -h /www', {
        volumeMounts: [{ name: 'www', mountPath: '/www' }],
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
      })],
    }),
    // tcpSocket readiness with initialDelaySeconds: not Ready before the delay although the port is open at once.
    pod('tcp', {
      containers: [busybox('main', 'exec httpd -f -p 9000 -h /', {
        ports: [{ name: 'svc', containerPort: 9000 }],
        readinessProbe: { tcpSocket: { port: 'svc' }, initialDelaySeconds: 4, periodSeconds: 1 },
      })],
    }),
    // Liveness would fail at once (the file comes after 4 s); gated by the startup probe, it never runs before.
    pod('startup', {
      containers: [busybox('main', 'sleep 4; touch /tmp/started; exec sleep 3600', {
        startupProbe: { exec: { command: ['test', '-f', '/tmp/started'] }, periodSeconds: 1, failureThreshold: 30 },
        livenessProbe: { exec: { command: ['test', '-f', '/tmp/started'] }, periodSeconds: 1, failureThreshold: 1 },
      })],
    }),
    pod('live', {
      containers: [busybox('main', 'touch /tmp/alive; exec sleep 3600', {
        livenessProbe: { exec: { command: ['test', '-f', '/tmp/alive'] }, periodSeconds: 1, failureThreshold: 2 },
      })],
    }),
    // An exec probe slower than its timeoutSeconds fails, so the pod never becomes Ready.
    pod('slowprobe', {
      containers: [busybox('main', 'exec sleep 3600', {
        readinessProbe: { exec: { command: ['sleep', '3'] }, timeoutSeconds: 1, periodSeconds: 1 },
      })],
    }),
    pod('crash', { containers: [busybox('main', 'exit 3')] }),
  ];
}

/** Reads a cgroup file of the container from inside it (v1: each hierarchy is the container's own). */
async function cgroup(podName: string, v1: string, v2: string): Promise<string> {
  return (await shOk(podName, 'main', `cat /sys/fs/cgroup/${cgroupV2 ? v2 : v1}`)).trim();
}

test('resources become cgroup limits and shares, and the QoS class is reported', async () => {
  const res = await running('res');
  assert.equal(res.status.qosClass, 'Burstable');
  if (cgroupV2) {
    assert.equal(await cgroup('res', '', 'cpu.max'), '50000 100000');
    assert.equal(await cgroup('res', '', 'memory.max'), String(64 * 1024 * 1024));
    // runc maps shares to weight: 1 + ((shares - 2) * 9999) / 262142, shares 256 for 250m.
    assert.equal(await cgroup('res', '', 'cpu.weight'), String(1 + Math.floor(((256 - 2) * 9999) / 262142)));
  } else {
    assert.equal(await cgroup('res', 'cpu/cpu.cfs_quota_us', ''), '50000');
    assert.equal(await cgroup('res', 'cpu/cpu.cfs_period_us', ''), '100000');
    assert.equal(await cgroup('res', 'memory/memory.limit_in_bytes', ''), String(64 * 1024 * 1024));
    assert.equal(await cgroup('res', 'cpu/cpu.shares', ''), '256');
  }
  const g = await running('guaranteed');
  assert.equal(g.status.qosClass, 'Guaranteed');
  assert.equal(await cgroup('guaranteed', 'cpu/cpu.shares', 'cpu.weight'), cgroupV2 ? String(1 + Math.floor(((102 - 2) * 9999) / 262142)) : '102');
  const be = await running('besteffort');
  assert.equal(be.status.qosClass, 'BestEffort');
  assert.equal(await cgroup('besteffort', 'cpu/cpu.shares', 'cpu.weight'), cgroupV2 ? '1' : '2');
  assert.match(await cgroup('besteffort', 'memory/memory.limit_in_bytes', 'memory.max'), /^(max|\d{16,})$/, 'no memory limit');
});

test('env from resourceFieldRef and a prefixed configMap, and workingDir', async () => {
  await running('res');
  const env = await shOk('res', 'main', 'env; echo "PWD=$(pwd)"');
  const vars = new Map(env.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  assert.equal(vars.get('MEM_LIMIT'), String(64 * 1024 * 1024));
  assert.equal(vars.get('MEM_LIMIT_MI'), '64');
  assert.equal(vars.get('CPU_REQ_M'), '250');
  assert.equal(vars.get('CM_COLOR'), 'blue');
  assert.equal(vars.get('CM_SIZE'), 'xl');
  assert.equal(vars.has('COLOR'), false, 'only prefixed names');
  assert.equal(vars.get('PWD'), '/var/www');
});

test('securityContext: user and group, capabilities, read-only root, no_new_privs', async () => {
  await running('sec');
  // The container's runAsUser overrides the pod's; the pod's runAsGroup applies to both.
  assert.equal((await shOk('sec', 'user', 'id -u; id -g')).trim(), '1001\n3000');
  assert.equal((await shOk('sec', 'caps', 'id -u; id -g')).trim(), '0\n3000');
  const write = await sh('sec', 'user', 'touch /rootfs-write');
  assert.notEqual(write.code, 0, 'the root filesystem is read-only');
  assert.match(write.stderr, /Read-only file system/);
  assert.equal((await shOk('sec', 'user', 'echo hi > /scratch/f && cat /scratch/f')).trim(), 'hi', 'an emptyDir stays writable');
  assert.match(await shOk('sec', 'user', 'cat /proc/self/status'), /^NoNewPrivs:\s+1$/m);
  const status = await shOk('sec', 'caps', 'cat /proc/self/status');
  // NET_ADMIN is capability 12: bit 0x1000 and nothing else.
  assert.match(status, /^CapEff:\s+0000000000001000$/m);
  assert.match(status, /^CapBnd:\s+0000000000001000$/m);
  assert.match(await shOk('sec', 'caps', 'cat /proc/self/status'), /^NoNewPrivs:\s+0$/m);
});

test('emptyDir medium Memory is a tmpfs with the sizeLimit', async () => {
  await running('sec');
  const mounts = await shOk('sec', 'user', 'cat /proc/mounts');
  const mem = mounts.split('\n').find((l) => l.split(' ')[1] === '/mem');
  assert.ok(mem, `/mem is mounted:\n${mounts}`);
  assert.equal(mem.split(' ')[2], 'tmpfs');
  assert.match(mem, /size=8192k/);
  const fill = await sh('sec', 'user', 'dd if=/dev/zero of=/mem/big bs=1M count=12');
  assert.notEqual(fill.code, 0, 'writing past the size limit fails');
  assert.match(fill.stderr, /No space left on device/);
  // Without a sizeLimit the pod's memory limit bounds it (the kubelet's rule), not half the host's RAM.
  await running('guaranteed');
  const g = (await shOk('guaranteed', 'main', 'cat /proc/mounts')).split('\n').find((l) => l.split(' ')[1] === '/mem');
  assert.match(g ?? '', /^tmpfs .*size=32768k/);
});

test('hostNetwork and hostPID: the host\'s interfaces and processes, podIP = hostIP', async () => {
  const host = await running('host');
  assert.equal(host.status.podIP, LOCAL_NODE_IP);
  assert.equal(host.status.hostIP, LOCAL_NODE_IP);
  assert.match(await shOk('host', 'main', 'cat /proc/net/dev'), new RegExp(`^\\s*${node.bridge}:`, 'm'), 'the pod sees the host\'s pod bridge');
  const cmdline = await shOk('host', 'main', `tr '\\0' ' ' < /proc/${node.pid}/cmdline`);
  assert.match(cmdline, new RegExp(`agent .*--node-name ${NODE}`), 'the pod sees the agent process');
  // A pod without hostPID sees only its own processes.
  assert.equal((await sh('res', 'main', `test -e /proc/${node.pid}`)).code, 1);
});

test('claims pre-bound to a hostPath PV and a local PV: bound by the controller, the pod writes to the host path', async () => {
  await running('claims');
  for (const name of ['claim-hostpath', 'claim-local']) {
    const pvc = JSON.parse(await k(['get', 'pvc', name, '-o', 'json']));
    assert.equal(pvc.status.phase, 'Bound');
    const pv = JSON.parse(await k(['get', 'pv', `${name}-${run}`, '-o', 'json']));
    assert.deepEqual([pv.status.phase, pv.spec.claimRef.uid], ['Bound', pvc.metadata.uid]);
  }
  assert.equal(readFileSync(join(hostDir, 'hostpath', 'written'), 'utf8'), 'from-pod\n');
  assert.equal(readFileSync(join(hostDir, 'local', 'written'), 'utf8'), 'from-pod\n');
  writeFileSync(join(hostDir, 'local', 'from-host'), 'hello');
  assert.equal(await shOk('claims', 'main', 'cat /local/from-host'), 'hello');
});

test('a claim of the default local-path class: provisioned on the scheduled node, writable by any user, removed on release', async () => {
  const p = await running('dynamic');
  assert.equal(p.spec.nodeName, NODE, 'scheduled');
  const pvc = JSON.parse(await k(['get', 'pvc', 'claim-dynamic', '-o', 'json']));
  assert.equal(pvc.spec.storageClassName, 'local-path', 'the default class was set by admission');
  assert.equal(pvc.metadata.annotations['volume.kubernetes.io/selected-node'], NODE);
  assert.equal(pvc.status.phase, 'Bound');
  const pv = JSON.parse(await k(['get', 'pv', pvc.spec.volumeName, '-o', 'json']));
  assert.equal(pv.metadata.name, `pvc-${pvc.metadata.uid}`);
  assert.deepEqual(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values, [NODE]);
  const dir = pv.spec.hostPath.path;
  assert.equal(dir, join(server.dataDir, 'storage', `pvc-${pvc.metadata.uid}_default_claim-dynamic`));
  assert.equal(readFileSync(join(dir, 'written'), 'utf8'), 'from-pod\n', 'written as uid 1000');
  assert.match(await k(['get', 'pvc', 'claim-dynamic']), /claim-dynamic\s+Bound\s+pvc-\S+\s+64Mi\s+RWO\s+local-path/);
  // The generic ephemeral volume: a claim made for the pod, provisioned the same way.
  const scratch = JSON.parse(await k(['get', 'pvc', 'dynamic-scratch', '-o', 'json']));
  assert.equal(scratch.metadata.ownerReferences[0].uid, p.metadata.uid);
  const scratchDir = JSON.parse(await k(['get', 'pv', scratch.spec.volumeName, '-o', 'json'])).spec.hostPath.path;
  assert.equal(readFileSync(join(scratchDir, 'written'), 'utf8'), 'scratch\n');

  // Reclaim policy Delete: once the pod and the claim are gone, the agent removes the directory.
  await k(['delete', 'pod', 'dynamic', '--wait=true']);
  await k(['delete', 'pvc', 'claim-dynamic', '--wait=true']);
  await eventually(async () => !existsSync(dir), 'the directory removed on its node');
  await eventually(async () => !existsSync(scratchDir), 'the ephemeral volume removed with its pod');
  await eventually(async () => (await server.kubectl(['get', 'pv', pv.metadata.name])).code !== 0, 'the PersistentVolume deleted');
});

test('kubectl top, and a HorizontalPodAutoscaler that scales a CPU-bound Deployment from its pods\' metrics', async () => {
  const labels = { app: 'burner' };
  await k(['apply', '-f', '-'], yamlDocs([
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'burner' }, spec: {
      replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: {
        nodeName: NODE, terminationGracePeriodSeconds: 1,
        // 20m requested, up to 100m used: 500 % of the request.
        containers: [busybox('spin', 'while :; do :; done', { resources: { requests: { cpu: '20m' }, limits: { cpu: '100m' } } })],
      } } } },
    { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'burner' }, spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'burner' }, minReplicas: 1, maxReplicas: 3,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
    } },
  ]));
  try {
    await eventually(async () => (await server.kubectl(['top', 'pod', '-l', 'app=burner', '--no-headers'])).stdout.match(/^burner-\S+\s+\d+m/m), 'kubectl top pod');
    await eventually(async () => JSON.parse(await k(['get', 'deployment', 'burner', '-o', 'json'])).spec.replicas === 3, 'scaled up to the maximum', 90_000);
    const hpa = JSON.parse(await k(['get', 'hpa', 'burner', '-o', 'json']));
    assert.ok(hpa.status.currentMetrics[0].resource.current.averageUtilization > 100, JSON.stringify(hpa.status));
    assert.equal(hpa.status.conditions.find((c: any) => c.type === 'ScalingLimited')?.reason, 'TooManyReplicas');
    // A round whose metrics fetch failed (a loaded node) shows <unknown>, as Kubernetes does: the next one a figure.
    await eventually(async () => /burner\s+Deployment\/burner\s+cpu: \d+%\/50%\s+1\s+3\s+\d/.test(await k(['get', 'hpa', 'burner'])), 'kubectl get hpa with a utilization');
    assert.match(await k(['describe', 'hpa', 'burner']), /SuccessfulRescale\s+.*New size: \d; reason: cpu resource utilization \(percentage of request\) above target/);
    assert.match(await k(['top', 'node', NODE, '--no-headers']), new RegExp(`^${NODE}\\s+\\d+m\\s+\\d+%`));
  } finally {
    await k(['delete', 'hpa,deployment', 'burner', '--wait=true']);
    await eventually(async () => (await k(['get', 'pods', '-l', 'app=burner', '-o', 'name'])).trim() === '', 'the burners gone');
  }
});

test('a projected service-account token, CA and namespace; the token authenticates', async () => {
  const saPod = await running('sa');
  const volume = saPod.spec.volumes.find((v: any) => /^kube-api-access-[a-z0-9]{5}$/.test(v.name));
  assert.ok(volume?.projected, `admission added the projected volume: ${JSON.stringify(saPod.spec.volumes)}`);
  const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
  assert.deepEqual(saPod.spec.containers[0].volumeMounts.find((m: any) => m.mountPath === dir), { name: volume.name, readOnly: true, mountPath: dir });
  // The kubelet's service variables: the API server's Service always, the namespace's with service links.
  const svcs = JSON.parse(await k(['get', 'services', '-o', 'json'])).items;
  const ipOf = (name: string) => svcs.find((x: any) => x.metadata.name === name).spec.clusterIP;
  assert.equal(await shOk('sa', 'main', 'echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT'), `${ipOf('kubernetes')}:443\n`);
  assert.equal(await shOk('sa', 'main', 'echo $FEAT_SVC_SERVICE_HOST $FEAT_SVC_PORT_8080_TCP'), `${ipOf('feat-svc')} tcp://${ipOf('feat-svc')}:8080\n`);
  const noSa = await running('nosa');
  assert.ok(!(noSa.spec.volumes ?? []).some((v: any) => v.name.startsWith('kube-api-access-')), 'automountServiceAccountToken: false opts out');
  assert.equal(await shOk('sa', 'main', `cat ${dir}/namespace`), 'default');
  assert.equal(await shOk('sa', 'main', `cat ${dir}/ca.crt`), server.caPem);
  const token = (await shOk('sa', 'main', `cat ${dir}/token`)).trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.notEqual((await sh('sa', 'main', `touch ${dir}/x`)).code, 0, 'the volume is read-only');
  const caFile = join(node.dataDir, 'sa-ca.crt');
  writeFileSync(caFile, server.caPem);
  // A kubeconfig of its own: the admin's client certificate must not be what authenticates.
  const whoami = ok(await runKubectl(['--kubeconfig', '/dev/null', '--server', server.url, '--certificate-authority', caFile, '--token', token],
    ['auth', 'whoami', '-o', 'json']), 'auth whoami with the pod token');
  const user = JSON.parse(whoami).status.userInfo;
  assert.equal(user.username, 'system:serviceaccount:default:default');
  assert.ok(user.groups.includes('system:serviceaccounts:default'));
  // Bound to the pod, as Kubernetes records it in the token's extra info.
  assert.deepEqual(user.extra?.['authentication.kubernetes.io/pod-name'], ['sa']);
});

test('probes: httpGet readiness flips both ways, tcpSocket honours initialDelaySeconds, startup gates liveness', async () => {
  // web: Running before httpd answers, so not Ready; Ready once it answers; unready when the file goes.
  const early = await running('web');
  const startedAt = Date.parse(containerStatus(early, 'main').state.running.startedAt);
  const ready = await eventually(async () => {
    const p = await getPod('web');
    return condition(p, 'Ready')?.status === 'True' ? p : undefined;
  }, 'web Ready');
  assert.ok(Date.parse(condition(ready, 'Ready').lastTransitionTime) - startedAt >= 2000, 'not Ready before httpd answered');
  assert.equal(containerStatus(ready, 'main').ready, true);
  await shOk('web', 'main', 'rm /www/ready');
  await eventually(async () => condition(await getPod('web'), 'Ready')?.status === 'False', 'web unready after the file went', 20_000);
  assert.equal(containerStatus(await getPod('web'), 'main').restartCount, 0, 'readiness never restarts');

  const tcp = await eventually(async () => {
    const p = await getPod('tcp');
    return condition(p, 'Ready')?.status === 'True' ? p : undefined;
  }, 'tcp Ready');
  const tcpStarted = Date.parse(containerStatus(tcp, 'main').state.running.startedAt);
  // Conditions have second precision: at least 3 s of the 4 s delay is measurable.
  assert.ok(Date.parse(condition(tcp, 'Ready').lastTransitionTime) - tcpStarted >= 3000, 'initialDelaySeconds honoured');

  const s = await eventually(async () => {
    const p = await getPod('startup');
    return containerStatus(p, 'main')?.started === true ? p : undefined;
  }, 'startup probe succeeded');
  const sStarted = Date.parse(containerStatus(s, 'main').state.running.startedAt);
  assert.equal(containerStatus(s, 'main').restartCount, 0, 'liveness did not run before the startup probe succeeded');
  assert.ok(Date.parse(condition(s, 'ContainersReady').lastTransitionTime) - sStarted >= 3000, 'not started before the file existed');
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(containerStatus(await getPod('startup'), 'main').restartCount, 0, 'liveness passes after start');

  let slow = await running('slowprobe');
  // Give the probe time to succeed if it could (a wait, not a check on how long things took).
  const slowStarted = Date.parse(containerStatus(slow, 'main').state.running.startedAt);
  await new Promise((r) => setTimeout(r, Math.max(0, slowStarted + 3000 - Date.now())));
  slow = await getPod('slowprobe');
  assert.equal(condition(slow, 'Ready')?.status, 'False', 'an exec probe past its timeoutSeconds fails');
  const unhealthy = JSON.parse(await k(['get', 'events', '-o', 'json'])).items
    .find((e: any) => e.involvedObject?.name === 'slowprobe' && e.reason === 'Unhealthy');
  assert.match(unhealthy?.message ?? '', /^Readiness probe failed: .*timed out/);
});

test('events: Pulled, Created, Started, Unhealthy, Killing, BackOff with the container fieldPath', async () => {
  await running('live');
  await shOk('live', 'main', 'rm /tmp/alive');
  await eventually(async () => (containerStatus(await getPod('live'), 'main')?.restartCount ?? 0) >= 1, 'the liveness restart', 30_000);
  await eventually(async () => containerStatus(await getPod('crash'), 'main')?.state?.waiting?.reason === 'CrashLoopBackOff', 'crash in CrashLoopBackOff');
  const events = await eventually(async () => {
    const items: any[] = JSON.parse(await k(['get', 'events', '-o', 'json'])).items;
    const of = (podName: string) => items.filter((e) => e.involvedObject?.name === podName);
    const reasons = (podName: string) => new Set(of(podName).map((e) => e.reason));
    const live = reasons('live');
    const crash = reasons('crash');
    return ['Pulled', 'Created', 'Started', 'Unhealthy', 'Killing'].every((r) => live.has(r)) && crash.has('BackOff') ? { live: of('live'), crash: of('crash') } : undefined;
  }, 'the pods\' events', 20_000);
  for (const e of [...events.live, ...events.crash].filter((x) => ['Pulled', 'Created', 'Started', 'Unhealthy', 'Killing', 'BackOff'].includes(x.reason))) {
    assert.equal(e.involvedObject.fieldPath, 'spec.containers{main}', `${e.reason} names its container`);
    assert.equal(e.involvedObject.kind, 'Pod');
    assert.equal(e.source?.host, NODE);
  }
  const byReason = (list: any[], r: string) => list.find((e) => e.reason === r);
  assert.match(byReason(events.live, 'Pulled').message, /already present on machine/);
  assert.match(byReason(events.live, 'Unhealthy').message, /^Liveness probe failed/);
  assert.ok(byReason(events.live, 'Unhealthy').count >= 2, 'killed only after failureThreshold (2) failures');
  assert.equal(byReason(events.live, 'Unhealthy').type, 'Warning');
  assert.match(byReason(events.live, 'Killing').message, /failed liveness probe, will be restarted/);
  assert.equal(byReason(events.crash, 'BackOff').type, 'Warning');
  assert.match(byReason(events.crash, 'BackOff').message, /^Back-off restarting failed container main/);
});
