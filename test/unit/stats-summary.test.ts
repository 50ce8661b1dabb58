import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeMemory, parseMeminfo, parseProcStat, serveNodeProxy, StatsCollector, type StatsRuntime } from '../../src/agent/stats.js';
import type { Container, ContainerStats, PodSandbox, PodSandboxStats } from '../../src/agent/runtime/cri-types.js';
import type { TunnelStream } from '../../src/tunnel/mux.js';

const STAT = (user: number, system: number, idle: number) =>
  `cpu  ${user} 0 ${system} ${idle} 50 0 10 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\nbtime 1700000000\n`;
const MEMINFO = 'MemTotal:       1000 kB\nMemFree:         400 kB\nInactive(file):  100 kB\nAnonPages:       250 kB\nHugePages_Total:       0\n';

test('parseProcStat counts busy ticks (not idle or iowait) and reads the boot time', () => {
  const s = parseProcStat(STAT(100, 20, 5000));
  assert.equal(s.busyTicks, 130n);
  assert.equal(s.bootTimeSec, 1700000000);
  assert.throws(() => parseProcStat('intr 1\n'), /no aggregate cpu line/);
});

test('node memory: working set is usage less inactive file cache; available is the rest', () => {
  const mi = parseMeminfo(MEMINFO);
  assert.equal(mi.get('MemTotal'), 1000 * 1024);
  assert.equal(mi.get('HugePages_Total'), 0);
  assert.deepEqual(nodeMemory(mi), {
    usageBytes: 600 * 1024, workingSetBytes: 500 * 1024, availableBytes: 500 * 1024, rssBytes: 250 * 1024,
  });
});

const u = (v: number) => ({ value: String(v) });
const S = 1_000_000_000;

function fakeRuntime(state: { ctrCpuNs: number; atNs: number; sandboxStats?: PodSandboxStats[] }): StatsRuntime {
  const sandbox = (id: string, name: string, node?: string): PodSandbox => ({
    id, metadata: { name, namespace: 'default', uid: `uid-${name}` }, state: 'SANDBOX_READY',
    createdAt: String(1_700_000_100 * S), labels: node ? { 'skiff.io/node': node } : {}, annotations: {}, runtimeHandler: '',
  });
  const container: Container = {
    id: 'c1', podSandboxId: 'sb1', metadata: { name: 'app' }, image: null, imageRef: '', state: 'CONTAINER_RUNNING',
    createdAt: String(1_700_000_200 * S), labels: {}, annotations: {},
  };
  return {
    listPodSandbox: async () => [sandbox('sb1', 'web', 'n1'), sandbox('sb2', 'other', 'n2')],
    listContainers: async () => [container],
    listContainerStats: async (): Promise<ContainerStats[]> => [{
      attributes: { id: 'c1', metadata: { name: 'app' }, labels: {}, annotations: {} },
      cpu: { timestamp: String(state.atNs), usageCoreNanoSeconds: u(state.ctrCpuNs), usageNanoCores: null },
      memory: { timestamp: String(state.atNs), workingSetBytes: u(4096), availableBytes: null, usageBytes: u(8192), rssBytes: u(2048), pageFaults: null, majorPageFaults: null },
      writableLayer: null,
    }],
    listPodSandboxStats: async () => {
      if (!state.sandboxStats) throw new Error('unimplemented');
      return state.sandboxStats;
    },
  };
}

test('the collector reports the node and its own pods, with rates from the previous sample', async () => {
  const proc = mkdtempSync(join(tmpdir(), 'skiff-stats-'));
  try {
    writeFileSync(join(proc, 'stat'), STAT(100, 20, 5000));
    writeFileSync(join(proc, 'meminfo'), MEMINFO);
    const state = { ctrCpuNs: 1 * S, atNs: 1_700_001_000 * S };
    let nowNs = BigInt(1_700_001_000) * BigInt(S);
    const collector = new StatsCollector(fakeRuntime(state), { procRoot: proc, nowNs: () => nowNs });

    const first = await collector.summary('n1');
    assert.equal(first.node.nodeName, 'n1');
    assert.equal(first.node.startTime, new Date(1700000000 * 1000).toISOString());
    assert.equal(first.node.cpu.usageCoreNanoSeconds, 130 * 10_000_000);
    assert.equal(first.node.cpu.usageNanoCores, undefined, 'one sample gives no rate');
    assert.equal(first.node.memory.workingSetBytes, 500 * 1024);
    assert.deepEqual(first.pods.map((p) => p.podRef), [{ name: 'web', namespace: 'default', uid: 'uid-web' }], 'another node\'s pod is left out');
    const pod = first.pods[0]!;
    assert.equal(pod.startTime, new Date(1_700_000_100 * 1000).toISOString());
    assert.equal(pod.containers.length, 1);
    assert.equal(pod.containers[0]!.name, 'app');
    assert.equal(pod.containers[0]!.memory?.workingSetBytes, 4096);
    assert.equal(pod.containers[0]!.cpu?.usageNanoCores, undefined);
    // Without ListPodSandboxStats the pod is the sum of its containers.
    assert.equal(pod.memory?.usageBytes, 8192);
    assert.equal(pod.cpu?.usageCoreNanoSeconds, 1 * S);

    // Two seconds later: the node used 50 more ticks (0.5 s of CPU), the container 1 s more.
    writeFileSync(join(proc, 'stat'), STAT(140, 30, 5100));
    nowNs += 2n * BigInt(S);
    state.ctrCpuNs = 2 * S;
    state.atNs += 2 * S;
    const second = await collector.summary('n1');
    assert.equal(second.node.cpu.usageNanoCores, 250_000_000);
    assert.equal(second.pods[0]!.containers[0]!.cpu?.usageNanoCores, 500_000_000);
    assert.equal(second.pods[0]!.cpu?.usageNanoCores, 500_000_000);
    assert.ok(second.node.memory.time > first.node.memory.time);
  } finally {
    rmSync(proc, { recursive: true, force: true });
  }
});

test('the pod\'s own cgroup stats are preferred to the containers\' sum when the runtime has them', async () => {
  const state = {
    ctrCpuNs: S, atNs: 10 * S,
    sandboxStats: [{
      attributes: { id: 'sb1', metadata: null, labels: {}, annotations: {} },
      linux: {
        cpu: { timestamp: String(10 * S), usageCoreNanoSeconds: u(3 * S), usageNanoCores: u(7) },
        memory: { timestamp: String(10 * S), workingSetBytes: u(99), availableBytes: null, usageBytes: u(100), rssBytes: null, pageFaults: null, majorPageFaults: null },
        process: null, containers: [],
      },
    }],
  };
  const collector = new StatsCollector(fakeRuntime(state), { procRoot: '/proc' });
  const pod = (await collector.summary('n1')).pods[0]!;
  assert.deepEqual(pod.cpu, { time: new Date(10_000).toISOString(), usageCoreNanoSeconds: 3 * S, usageNanoCores: 7 });
  assert.equal(pod.memory?.workingSetBytes, 99);
});

test('serveNodeProxy refuses paths other than /stats/summary with a 404', async () => {
  const rejected: { code: number; message: string }[] = [];
  const stream = { reject: (r: { code: number; message: string }) => rejected.push(r), accept: () => assert.fail('accepted') } as unknown as TunnelStream;
  await serveNodeProxy(fakeRuntime({ ctrCpuNs: 0, atNs: 0 }), { op: 'proxy', node: 'n1', path: '/configz' }, stream);
  assert.equal(rejected[0]?.code, 404);
});
