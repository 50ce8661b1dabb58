// The kubelet's Summary API (`/stats/summary`), which metrics-server and `kubectl top` read through
// `nodes/<node>/proxy`: CPU and memory for the node, from /proc, and for each running pod and its
// containers, from the container runtime's CRI stats. Rates (usageNanoCores) need two samples of a
// cumulative counter, so the collector remembers each counter's previous sample between requests;
// the first request after a start reports cumulative figures only, as a fresh kubelet does.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CriClient } from './runtime/cri-client.js';
import type { CpuUsage, MemoryUsage, UInt64Value } from './runtime/cri-types.js';
import type { TunnelStream } from '../tunnel/mux.js';
import type { ProxyRequest } from '../tunnel/protocol.js';
import { NODE_LABEL } from './pods/labels.js';

/** The node's HTTP paths the server may reach through the tunnel; only the Summary API so far. */
export const SUMMARY_PATH = '/stats/summary';

export interface CpuStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}

export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
}

export interface ContainerStatsSummary {
  name: string;
  startTime: string;
  cpu?: CpuStats;
  memory?: MemoryStats;
}

export interface PodStatsSummary {
  podRef: { name: string; namespace: string; uid: string };
  startTime: string;
  containers: ContainerStatsSummary[];
  cpu?: CpuStats;
  memory?: MemoryStats;
}

export interface Summary {
  node: { nodeName: string; startTime: string; cpu: CpuStats; memory: MemoryStats };
  pods: PodStatsSummary[];
}

/** The CRI calls the collector needs (a narrow slice, so tests can fake the runtime). */
export type StatsRuntime = Pick<CriClient, 'listPodSandbox' | 'listContainers' | 'listContainerStats' | 'listPodSandboxStats'>;

export interface StatsCollectorOptions {
  /** Where /proc is (tests point it at fixture files). */
  procRoot?: string;
  /** Wall clock in nanoseconds, for the node's CPU rate. */
  nowNs?: () => bigint;
}

// /proc/stat counts in USER_HZ ticks, which Linux fixes at 100 for user space on every architecture.
const NS_PER_TICK = 10_000_000n;

interface Sample { usageNs: bigint; atNs: bigint }

export class StatsCollector {
  private readonly procRoot: string;
  private readonly nowNs: () => bigint;
  /** Previous cumulative CPU sample per counter ('node', 'pod/<sandbox id>', 'ctr/<container id>'). */
  private samples = new Map<string, Sample>();

  constructor(private readonly cri: StatsRuntime, opts: StatsCollectorOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.nowNs = opts.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
  }

  async summary(nodeName: string): Promise<Summary> {
    const seen = new Map<string, Sample>();
    const node = await this.nodeStats(nodeName, seen);
    const pods = await this.podStats(nodeName, seen);
    // Counters not seen this time belong to containers that are gone; dropping them bounds the map.
    this.samples = seen;
    return { node, pods };
  }

  private async nodeStats(nodeName: string, seen: Map<string, Sample>): Promise<Summary['node']> {
    const [statText, memText] = await Promise.all([
      readFile(join(this.procRoot, 'stat'), 'utf8'), readFile(join(this.procRoot, 'meminfo'), 'utf8'),
    ]);
    const nowNs = this.nowNs();
    const time = isoFromNs(nowNs);
    const stat = parseProcStat(statText);
    const cpu: CpuStats = { time, usageCoreNanoSeconds: Number(stat.busyTicks * NS_PER_TICK) };
    const rate = this.rate('node', { usageNs: stat.busyTicks * NS_PER_TICK, atNs: nowNs }, seen);
    if (rate !== undefined) cpu.usageNanoCores = rate;
    return {
      nodeName,
      startTime: new Date(stat.bootTimeSec * 1000).toISOString(),
      cpu,
      memory: { time, ...nodeMemory(parseMeminfo(memText)) },
    };
  }

  private async podStats(nodeName: string, seen: Map<string, Sample>): Promise<PodStatsSummary[]> {
    const [sandboxes, containers, containerStats] = await Promise.all([
      this.cri.listPodSandbox({ state: { state: 'SANDBOX_READY' } }),
      this.cri.listContainers({ state: { state: 'CONTAINER_RUNNING' } }),
      this.cri.listContainerStats(),
    ]);
    // Pod-level figures come from the pod's cgroup where the runtime reports it (it includes the
    // pause process and page cache charged to the pod); otherwise the containers' sums stand in.
    const sandboxStats = new Map<string, { cpu: CpuUsage | null; memory: MemoryUsage | null }>();
    try {
      for (const s of await this.cri.listPodSandboxStats()) {
        if (s.attributes && s.linux) sandboxStats.set(s.attributes.id, s.linux);
      }
    } catch {
      // Runtimes without ListPodSandboxStats (it is newer than the rest of CRI v1) get the sums.
    }
    const statsById = new Map(containerStats.map((s) => [s.attributes?.id ?? '', s]));

    const pods: PodStatsSummary[] = [];
    for (const sb of sandboxes) {
      const meta = sb.metadata;
      if (!meta) continue;
      // Two agents may share one runtime (tests do): each reports only its own pods.
      const owner = sb.labels[NODE_LABEL];
      if (owner !== undefined && owner !== nodeName) continue;
      const ctrs: ContainerStatsSummary[] = [];
      for (const c of containers) {
        if (c.podSandboxId !== sb.id) continue;
        const st = statsById.get(c.id);
        ctrs.push({
          name: c.metadata?.name ?? '',
          startTime: isoFromNs(BigInt(c.createdAt)),
          ...this.usage(`ctr/${c.id}`, st?.cpu ?? null, st?.memory ?? null, seen),
        });
      }
      const own = sandboxStats.get(sb.id);
      const podUsage = own?.cpu || own?.memory
        ? this.usage(`pod/${sb.id}`, own.cpu, own.memory, seen)
        : sumUsage(ctrs);
      pods.push({
        podRef: { name: meta.name, namespace: meta.namespace, uid: meta.uid },
        startTime: isoFromNs(BigInt(sb.createdAt)),
        containers: ctrs,
        ...podUsage,
      });
    }
    return pods;
  }

  private usage(key: string, cpu: CpuUsage | null, mem: MemoryUsage | null, seen: Map<string, Sample>): { cpu?: CpuStats; memory?: MemoryStats } {
    const out: { cpu?: CpuStats; memory?: MemoryStats } = {};
    if (cpu) {
      const atNs = BigInt(cpu.timestamp);
      const usageNs = u64(cpu.usageCoreNanoSeconds);
      out.cpu = { time: isoFromNs(atNs) };
      if (usageNs !== undefined) {
        out.cpu.usageCoreNanoSeconds = Number(usageNs);
        // The runtime's own rate when it gives one; ours from the previous sample otherwise.
        const given = u64(cpu.usageNanoCores);
        const rate = this.rate(key, { usageNs, atNs }, seen);
        const nanoCores = given ? Number(given) : rate;
        if (nanoCores !== undefined) out.cpu.usageNanoCores = nanoCores;
      }
    }
    if (mem) {
      out.memory = dropUndefined({
        time: isoFromNs(BigInt(mem.timestamp)),
        availableBytes: num(mem.availableBytes), usageBytes: num(mem.usageBytes),
        workingSetBytes: num(mem.workingSetBytes), rssBytes: num(mem.rssBytes),
        pageFaults: num(mem.pageFaults), majorPageFaults: num(mem.majorPageFaults),
      });
    }
    return out;
  }

  /** Records `cur` and returns the rate since the previous sample of `key`, in nanocores. */
  private rate(key: string, cur: Sample, seen: Map<string, Sample>): number | undefined {
    seen.set(key, cur);
    const prev = this.samples.get(key);
    if (!prev || cur.atNs <= prev.atNs || cur.usageNs < prev.usageNs) return undefined;
    // nanoseconds of CPU per nanosecond of wall time, times 1e9: nanocores.
    return Number(((cur.usageNs - prev.usageNs) * 1_000_000_000n) / (cur.atNs - prev.atNs));
  }
}

/** Answers a `proxy` stream: the Summary as JSON, or a 404 for any other path. */
export async function serveNodeProxy(cri: StatsRuntime, req: ProxyRequest, stream: TunnelStream,
  metrics?: { render(path: string): Promise<string | undefined> }): Promise<void> {
  const text = req.path !== SUMMARY_PATH ? await metrics?.render(req.path) : undefined;
  if (text !== undefined) { stream.accept(); stream.end(text); return; }
  if (req.path !== SUMMARY_PATH) return stream.reject({ code: 404, message: `the node serves no ${req.path}` });
  const body = JSON.stringify(await statsCollectorFor(cri).summary(req.node));
  stream.accept();
  stream.end(body);
}

// One collector per runtime, so the previous samples outlive each request.
const collectors = new WeakMap<StatsRuntime, StatsCollector>();

export function statsCollectorFor(cri: StatsRuntime): StatsCollector {
  let c = collectors.get(cri);
  if (!c) collectors.set(cri, c = new StatsCollector(cri));
  return c;
}

/** The busy CPU time of all CPUs (everything but idle and iowait), in ticks, and the boot time. */
export function parseProcStat(text: string): { busyTicks: bigint; bootTimeSec: number } {
  let busyTicks: bigint | undefined;
  let bootTimeSec = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'cpu') {
      // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
      const t = f.slice(1, 9).map((v) => BigInt(v));
      busyTicks = t.reduce((a, b) => a + b, 0n) - (t[3] ?? 0n) - (t[4] ?? 0n);
    } else if (f[0] === 'btime') {
      bootTimeSec = Number(f[1]);
    }
  }
  if (busyTicks === undefined) throw new Error('no aggregate cpu line in /proc/stat');
  return { busyTicks, bootTimeSec };
}

/** /proc/meminfo's fields in bytes. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]) * (line.includes('kB') ? 1024 : 1));
  }
  return out;
}

/**
 * The node's memory as the kubelet defines it: usage is all memory in use (page cache included),
 * the working set is usage less the inactive file cache (what the kernel cannot easily reclaim), and
 * available is what remains of the total after the working set; the eviction signal
 * `memory.available` is computed the same way.
 */
export function nodeMemory(mi: Map<string, number>): Omit<MemoryStats, 'time'> {
  const total = mi.get('MemTotal') ?? 0;
  const usage = total - (mi.get('MemFree') ?? 0);
  const workingSet = Math.max(0, usage - (mi.get('Inactive(file)') ?? 0));
  return dropUndefined({
    availableBytes: total - workingSet,
    usageBytes: usage,
    workingSetBytes: workingSet,
    rssBytes: mi.get('AnonPages'),
  });
}

function sumUsage(ctrs: ContainerStatsSummary[]): { cpu?: CpuStats; memory?: MemoryStats } {
  const out: { cpu?: CpuStats; memory?: MemoryStats } = {};
  const cpus = ctrs.map((c) => c.cpu).filter((c): c is CpuStats => !!c);
  const mems = ctrs.map((c) => c.memory).filter((m): m is MemoryStats => !!m);
  if (cpus.length) {
    out.cpu = dropUndefined({
      time: latest(cpus.map((c) => c.time)),
      usageNanoCores: sum(cpus.map((c) => c.usageNanoCores)),
      usageCoreNanoSeconds: sum(cpus.map((c) => c.usageCoreNanoSeconds)),
    });
  }
  if (mems.length) {
    out.memory = dropUndefined({
      time: latest(mems.map((m) => m.time)),
      usageBytes: sum(mems.map((m) => m.usageBytes)),
      workingSetBytes: sum(mems.map((m) => m.workingSetBytes)),
      rssBytes: sum(mems.map((m) => m.rssBytes)),
    });
  }
  return out;
}

/** A sum only when every part is known: a partial sum would under-report. */
function sum(values: (number | undefined)[]): number | undefined {
  return values.every((v) => v !== undefined) ? values.reduce((a, b) => a! + b!, 0) : undefined;
}

function latest(times: string[]): string {
  return times.reduce((a, b) => (a > b ? a : b));
}

function u64(v: UInt64Value | null | undefined): bigint | undefined {
  return v ? BigInt(v.value) : undefined;
}

function num(v: UInt64Value | null | undefined): number | undefined {
  return v ? Number(v.value) : undefined;
}

function isoFromNs(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
