// The kubelet Summary API end to end: a real API server (in this process), a node that joined with
// the cluster token and dialled its tunnel, a real containerd running one busybox pod, and the real
// kubectl: `kubectl get --raw /api/v1/nodes/<node>/proxy/stats/summary` lists the node with its memory
// and CPU, and the pod with its container. Everything is torn down afterwards, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { freePort } from '../helpers/cluster.js';
import { runKubectl, ok, fails, type KubectlResult } from '../helpers/kubectl.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { parseToken } from '../../src/pki/token.js';
import type { PodSandboxConfig } from '../../src/agent/runtime/cri-types.js';
import { removeLabelled } from '../helpers/runtime-cleanup.js';
import { parsePrometheusText } from '../helpers/prom-text.js';

process.env.SKIFF_LOG_LEVEL ??= 'warn';
// After the log level is set: modules create their loggers when they load.
const { startServer } = await import('../../src/server/run.js');
const { ContainerdSupervisor } = await import('../../src/agent/runtime/containerd.js');
const { CriClient } = await import('../../src/agent/runtime/cri-client.js');
const { writeBridgeCniConfig } = await import('../../src/agent/runtime/cni-config.js');
const { imagesDir, ensurePauseImage, importImageDir } = await import('../../src/agent/runtime/images.js');
const { teardownRuntime } = await import('../../src/agent/runtime/teardown.js');
const { AgentTunnel, runtimeStreamHandler } = await import('../../src/agent/tunnel/client.js');
const { AgentMetrics } = await import('../../src/agent/metrics.js');
const { Registry } = await import('prom-client');

const run = randomBytes(3).toString('hex');
const BRIDGE = `sksu${run}`;
const POD_CIDR = `10.${190 + (randomBytes(1)[0]! % 40)}.${randomBytes(1)[0]}.0/24`;
const CGROUP_PARENT = `/skiff-su-${run}`;
const NODE = `node-${run}`;

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd needs it)');
  for (const bin of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(`${bin} on PATH`);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge (containernetworking-plugins)');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (busybox-static)');
  return missing;
}

// Short: containerd's socket path must fit a unix socket address.
const dataDir = mkdtempSync('/tmp/skiff-su-');
const kubeconfig = join(dataDir, 'kubeconfig.yaml');
let server: Awaited<ReturnType<typeof startServer>> | undefined;
let port = 0;
let supervisor: InstanceType<typeof ContainerdSupervisor> | undefined;
let cri: InstanceType<typeof CriClient> | undefined;
let tunnel: InstanceType<typeof AgentTunnel> | undefined;
let podUid = '';

after(async () => {
  tunnel?.stop();
  await server?.close().catch(() => undefined);
  await removeLabelled(cri, 'skiff-e2e', run);
  cri?.close();
  await supervisor?.stop().catch(() => undefined);
  await teardownRuntime({ dataDir, cgroupParents: [CGROUP_PARENT], removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

const kubectl = (args: string[], input?: string): Promise<KubectlResult> =>
  runKubectl(['--kubeconfig', kubeconfig, '--cache-dir', join(dataDir, 'kubectl-cache')], args, { input });

function joinNode(): Promise<{ status: number; body: any }> {
  const token = parseToken(readFileSync(join(dataDir, 'server', 'token'), 'utf8'));
  const body = Buffer.from(JSON.stringify({ nodeName: NODE, nodePassword: randomBytes(16).toString('hex') }));
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, method: 'POST', path: '/v1-skiff/node-credentials', ca: server!.ctx.caBundlePem, agent: false,
      headers: { authorization: `Bearer ${token.password}`, 'content-type': 'application/json', 'content-length': String(body.length) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  const missing = missingPrerequisites();
  assert.deepEqual(missing, [], `this end-to-end test needs: ${missing.join('; ')}`);

  port = await freePort();
  server = await startServer({
    dataDir, bindAddress: '127.0.0.1', httpsListenPort: port, tlsSan: [], writeKubeconfig: kubeconfig, writeKubeconfigMode: 0o600,
    clusterCidr: '10.42.0.0/16', serviceCidr: '10.43.0.0/16', serviceNodePortRange: '30000-32767', clusterDns: '10.43.0.10',
    clusterDomain: 'cluster.local', disableAgent: true, disableControllerManager: true, watchCacheSize: 1000, disableScheduler: true,
    nodeMonitorGracePeriodSeconds: 40, defaultNotReadyTolerationSeconds: 300, defaultUnreachableTolerationSeconds: 300,
  });
  const joined = await joinNode();
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  const creds = joined.body as { caPem: string; certPem: string; keyPem: string };
  ok(await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata: { name: ${NODE} }\n`), 'create node');

  mkdirSync(imagesDir(dataDir), { recursive: true });
  writeBusyboxImage(imagesDir(dataDir), 'busybox.tar');
  writeBridgeCniConfig(join(dataDir, 'agent', 'cni', 'conf'), POD_CIDR, BRIDGE, { ipMasq: false, portMap: false });
  supervisor = new ContainerdSupervisor({ dataDir });
  await supervisor.start();
  cri = new CriClient(supervisor.endpoint, { timeoutMs: 20_000 });
  await ensurePauseImage({ dataDir, containerdSocket: supervisor.endpoint, cri });
  await importImageDir({ dataDir, containerdSocket: supervisor.endpoint, cri });

  tunnel = new AgentTunnel({
    serverUrl: `https://127.0.0.1:${port}`, nodeName: NODE, caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem,
    serve: runtimeStreamHandler({ cri, metrics: new AgentMetrics(new Registry(), cri, NODE) }),
  });
  tunnel.start();
  await tunnel.waitConnected(10_000);

  podUid = randomBytes(8).toString('hex');
  const sandboxConfig: PodSandboxConfig = {
    metadata: { name: 'busy', uid: podUid, namespace: 'default', attempt: 0 },
    hostname: 'busy',
    logDirectory: join(dataDir, 'pods', `default_busy_${podUid}`),
    labels: { 'skiff-e2e': run, 'io.kubernetes.pod.uid': podUid, 'skiff.io/node': NODE },
    linux: { cgroupParent: CGROUP_PARENT },
  };
  const sandboxId = await cri.runPodSandbox(sandboxConfig);
  const containerId = await cri.createContainer(sandboxId, {
    metadata: { name: 'spin', attempt: 0 },
    image: { image: TEST_IMAGE },
    // Some CPU and memory to show: a shell that keeps a string in memory and keeps counting.
    command: ['sh', '-c', 'x=$(head -c 200000 /dev/zero | tr "\\0" a); i=0; while true; do i=$((i+1)); done'],
    logPath: 'spin/0.log',
    labels: { 'skiff-e2e': run },
  }, sandboxConfig);
  await cri.startContainer(containerId);
});

async function summary(): Promise<any> {
  return JSON.parse(ok(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/stats/summary`]), 'get --raw stats/summary'));
}

test('kubectl get --raw .../proxy/stats/summary: the node and its running pod with its container', async () => {
  const first = await summary();
  assert.equal(first.node.nodeName, NODE);
  assert.ok(first.node.memory.usageBytes > 0 && first.node.memory.workingSetBytes > 0, JSON.stringify(first.node.memory));
  assert.ok(first.node.cpu.usageCoreNanoSeconds > 0);
  await new Promise((r) => setTimeout(r, 1_100));
  const s = await summary();
  assert.ok(s.node.cpu.usageNanoCores > 0, 'a second sample gives the node a CPU rate');
  const pod = s.pods.find((p: any) => p.podRef.uid === podUid);
  assert.ok(pod, `pod ${podUid} in ${JSON.stringify(s.pods.map((p: any) => p.podRef))}`);
  assert.deepEqual(pod.podRef, { name: 'busy', namespace: 'default', uid: podUid });
  assert.deepEqual(pod.containers.map((c: any) => c.name), ['spin']);
  const c = pod.containers[0];
  assert.ok(c.memory.workingSetBytes > 0, JSON.stringify(c.memory));
  assert.ok(c.cpu.usageCoreNanoSeconds > 0, JSON.stringify(c.cpu));
  assert.ok(c.cpu.usageNanoCores > 0, 'the busy loop shows as CPU use');
  assert.ok(pod.memory.workingSetBytes > 0);
});

test('kubectl top node / pod: metrics.k8s.io answered from the node\'s Summary API', async () => {
  // What kubectl top reads besides the metrics: the node's allocatable (percentages) and the API pod
  // the runtime's pod stands for (metrics are reported for pods the API knows, by namespace/name).
  ok(await kubectl(['patch', 'node', NODE, '--subresource=status', '--type=merge', '-p',
    JSON.stringify({ status: { capacity: { cpu: '4', memory: '8Gi', pods: '110' }, allocatable: { cpu: '4', memory: '8Gi', pods: '110' } } })]));
  ok(await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: { name: busy, namespace: default, labels: { app: spin } }\nspec: { nodeName: ${NODE}, containers: [{ name: spin, image: x }] }\n`));

  const nodes = ok(await kubectl(['top', 'node', NODE]), 'kubectl top node');
  const [header, row] = nodes.trim().split('\n');
  assert.match(header!.trimEnd(), /^NAME\s+CPU\(cores\)\s+CPU(\(%\))?\s+MEMORY\(bytes\)\s+MEMORY(\(%\))?$/);
  const [, cpu, cpuPct, mem] = /^\S+\s+(\d+)m\s+(\d+)%\s+(\d+)Mi\s+\d+%$/.exec(row!.trimEnd()) ?? [];
  assert.ok(cpu && Number(cpu) > 0 && Number(cpuPct) >= 0 && Number(mem) > 0, row);

  // The busy loop uses most of a core.
  const pods = ok(await kubectl(['top', 'pod', '--containers', '-l', 'app=spin']), 'kubectl top pod');
  const m = /^busy\s+spin\s+(\d+)m\s+(\d+)Mi\s*$/m.exec(pods);
  assert.ok(m && Number(m[1]) > 200, pods);

  const list = JSON.parse(ok(await kubectl(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods'])));
  assert.equal(list.kind, 'PodMetricsList');
  assert.deepEqual(list.items.map((p: any) => [p.metadata.name, p.containers.map((c: any) => c.name)]), [['busy', ['spin']]]);
  assert.match(list.items[0].containers[0].usage.cpu, /^\d+n$/);
  assert.match(list.items[0].containers[0].usage.memory, /^\d+Ki$/);
  fails(await kubectl(['top', 'pod', 'nope']), /podmetrics.metrics.k8s.io "default\/nope" not found/);
  assert.equal(ok(await kubectl(['top', 'pod', '-l', 'app=none'])).trim(), '', 'no pods match');
});

test('the node\'s /metrics and /metrics/cadvisor through the API proxy, in Prometheus format', async () => {
  const m = parsePrometheusText(ok(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics`]), 'proxy/metrics'));
  for (const name of ['kubelet_running_pods', 'kubelet_running_containers', 'kubelet_pod_start_duration_seconds',
    'kubelet_runtime_operations_duration_seconds', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) {
    assert.ok(m.names.has(name), `${name} missing`);
  }
  assert.ok(m.samples.find((x) => x.name === 'kubelet_running_pods')!.value >= 1);
  assert.ok(m.samples.find((x) => x.name === 'kubelet_running_containers' && x.labels.container_state === 'running')!.value >= 1);
  assert.ok(m.samples.some((x) => x.name === 'kubelet_runtime_operations_duration_seconds_count' && x.labels.operation_type === 'list_podsandbox' && x.value > 0));
  const c = parsePrometheusText(ok(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/metrics/cadvisor`]), 'proxy/metrics/cadvisor'));
  const cpu = c.samples.find((x) => x.name === 'container_cpu_usage_seconds_total' && x.labels.pod === 'busy' && x.labels.container === 'spin');
  assert.ok(cpu && cpu.value > 0 && cpu.labels.namespace === 'default', JSON.stringify(cpu));
  const mem = c.samples.find((x) => x.name === 'container_memory_working_set_bytes' && x.labels.pod === 'busy' && x.labels.container === 'spin');
  assert.ok(mem && mem.value > 0, JSON.stringify(mem));
});

test('other node paths are 404; a node without a tunnel is 503', async () => {
  fails(await kubectl(['get', '--raw', `/api/v1/nodes/${NODE}/proxy/configz`]), /NotFound|not found/i);
  ok(await kubectl(['apply', '-f', '-'], 'apiVersion: v1\nkind: Node\nmetadata: { name: lonely }\n'), 'create node');
  fails(await kubectl(['get', '--raw', '/api/v1/nodes/lonely/proxy/stats/summary']), /ServiceUnavailable|no agent tunnel/);
});
