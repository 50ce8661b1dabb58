// Per-pod and per-node facts computed once (when a pod or node is added) instead of on every scheduling
// attempt: parsed requests, host ports, compiled affinity terms, and each node's running totals.
import { compileAffinityTerm, compileWeighted, type AffinityTerm, type WeightedAffinityTerm } from './pod-affinity.js';
import { addResources, emptyResources, podRequests, resourcesOf, type Resources } from './resources.js';
import { effectiveTaints } from './taints.js';
import type { Labels } from '../../api/selectors.js';
import type { Node, Pod, Taint } from './types.js';

export interface HostPort { ip: string; protocol: string; port: number }

export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';

export function podKey(pod: Pod): string {
  return pod.metadata.uid ?? `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name ?? ''}`;
}

/** The owner whose replicas should spread: the controller reference, else the first owner. */
function ownerUid(pod: Pod): string | undefined {
  const refs = pod.metadata.ownerReferences;
  if (!refs?.length) return undefined;
  return (refs.find((r) => r.controller) ?? refs[0]!).uid;
}

export class PodInfo {
  readonly key: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly terminating: boolean;
  readonly priority: number;
  readonly owner: string | undefined;
  readonly requests: Resources;
  /** cpu/memory with 100m/200Mi standing in for containers that name none; scoring only. */
  readonly nonZeroCPU: number;
  readonly nonZeroMemory: number;
  readonly hostPorts: HostPort[];
  readonly requiredAffinity: AffinityTerm[];
  readonly requiredAntiAffinity: AffinityTerm[];
  readonly preferredAffinity: WeightedAffinityTerm[];
  readonly preferredAntiAffinity: WeightedAffinityTerm[];
  /** Has any pod (anti-)affinity at all: such pods make every later scheduling cycle look at them. */
  readonly hasAffinity: boolean;

  /** The newest version seen: one that changes nothing here replaces it in place (ClusterSnapshot.addPod). */
  pod: Pod;

  constructor(pod: Pod) {
    this.pod = pod;
    const spec = pod.spec ?? {};
    this.key = podKey(pod);
    this.namespace = pod.metadata.namespace ?? 'default';
    this.labels = pod.metadata.labels;
    this.terminating = pod.metadata.deletionTimestamp !== undefined;
    this.priority = spec.priority ?? 0;
    this.owner = ownerUid(pod);
    this.requests = podRequests(spec);
    const nonZero = podRequests(spec, true);
    this.nonZeroCPU = nonZero.milliCPU;
    this.nonZeroMemory = nonZero.memory;
    this.hostPorts = [];
    for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')]) {
      for (const p of c.ports ?? []) {
        if (p.hostPort && p.hostPort > 0) this.hostPorts.push({ ip: p.hostIP || '0.0.0.0', protocol: p.protocol || 'TCP', port: p.hostPort });
      }
    }
    const a = spec.affinity;
    this.requiredAffinity = (a?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => compileAffinityTerm(t, pod));
    this.requiredAntiAffinity = (a?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => compileAffinityTerm(t, pod));
    this.preferredAffinity = compileWeighted(a?.podAffinity?.preferredDuringSchedulingIgnoredDuringExecution, pod);
    this.preferredAntiAffinity = compileWeighted(a?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution, pod);
    this.hasAffinity = this.requiredAffinity.length + this.requiredAntiAffinity.length + this.preferredAffinity.length + this.preferredAntiAffinity.length > 0;
  }
}

const portKey = (protocol: string, port: number) => `${protocol}/${port}`;

/**
 * Offsets of a node's numbers within its row of NodeRows. `nonZero*` count the 100m/200Mi stand-ins
 * for containers that request no cpu/memory (scoring only).
 */
export const ROW = {
  allocMilliCPU: 0, allocMemory: 1, allocStorage: 2, allocPods: 3,
  reqMilliCPU: 4, reqMemory: 5, reqStorage: 6, pods: 7, nonZeroCPU: 8, nonZeroMemory: 9,
} as const;
const ROW_SIZE = Object.keys(ROW).length;

/**
 * The numbers the filter and score loops read for each of hundreds of nodes per pod (allocatable,
 * requested, pod count), one row per node in one Float64Array. In objects they were several heap
 * objects per node (the Resources objects, memory amounts boxed as heap numbers, the pods map), and
 * in the server's large heap nearly every one was a cache miss: the resource fit check took 14 times
 * as long per pod as in `bench/scheduler-algo.ts` (CPU profiles of `bench/scale.ts`, session 17).
 * A ClusterSnapshot shares one among its nodes; rows are reused once their node is dropped.
 */
export class NodeRows {
  data: Float64Array;
  private readonly free: number[] = [];
  private used = 0;

  constructor(initialRows = 64) {
    this.data = new Float64Array(ROW_SIZE * Math.max(1, initialRows));
  }

  take(): number {
    let row = this.free.pop();
    if (row === undefined) {
      row = this.used++ * ROW_SIZE;
      if (row + ROW_SIZE > this.data.length) {
        const grown = new Float64Array(this.data.length * 2);
        grown.set(this.data);
        this.data = grown;
      }
    }
    this.data.fill(0, row, row + ROW_SIZE);
    return row;
  }

  give(row: number): void { this.free.push(row); }
}

/** No taints: one shared array, so a node without any costs the filter no read of its own. */
const NO_TAINTS: Taint[] = [];

export class NodeInfo {
  node: Node | undefined;
  labels: Labels = undefined;
  /**
   * The two topology labels every Deployment pod spreads over (the system default constraints),
   * read once per node update: looked up among a node's label keys for each of hundreds of nodes
   * per pod, they were a good part of what spreading cost (profile of `bench/scheduler-algo.ts`).
   */
  hostname: string | undefined = undefined;
  zone: string | undefined = undefined;
  taints: Taint[] = NO_TAINTS;
  unschedulable = false;
  /** Mirrored, but for extended resources, in this node's row of `rows`; only setNode and account write either. */
  allocatable: Resources = emptyResources();
  readonly pods = new Map<string, PodInfo>();
  readonly requested: Resources = emptyResources();
  /** Where this node's numbers start in `rows.data` (see ROW). */
  readonly row: number;
  /** "TCP/80" → host IPs using it, with a use count (several pods may bind distinct IPs). */
  private readonly usedPorts = new Map<string, Map<string, number>>();
  /** The few pods other pods' scheduling must look at, kept apart so the rest can be skipped. */
  readonly podsWithAffinity = new Set<PodInfo>();
  readonly podsWithRequiredAntiAffinity = new Set<PodInfo>();

  constructor(readonly name: string, readonly rows: NodeRows = new NodeRows(1)) {
    this.row = rows.take();
  }

  setNode(node: Node | undefined): void {
    this.node = node;
    this.labels = node?.metadata.labels;
    this.hostname = this.labels?.[LABEL_HOSTNAME];
    this.zone = this.labels?.[LABEL_ZONE];
    const taints = node ? effectiveTaints(node) : NO_TAINTS;
    this.taints = taints.length ? taints : NO_TAINTS;
    this.unschedulable = node?.spec?.unschedulable === true;
    const a = this.allocatable = resourcesOf(node?.status?.allocatable);
    const d = this.rows.data;
    d[this.row + ROW.allocMilliCPU] = a.milliCPU;
    d[this.row + ROW.allocMemory] = a.memory;
    d[this.row + ROW.allocStorage] = a.ephemeralStorage;
    d[this.row + ROW.allocPods] = a.pods;
  }

  addPod(p: PodInfo): void { this.pods.set(p.key, p); this.account(p, 1); }
  removePod(p: PodInfo): void { this.pods.delete(p.key); this.account(p, -1); }

  private account(p: PodInfo, sign: 1 | -1): void {
    const r = this.requested;
    addResources(r, p.requests, sign);
    const d = this.rows.data;
    d[this.row + ROW.reqMilliCPU] = r.milliCPU;
    d[this.row + ROW.reqMemory] = r.memory;
    d[this.row + ROW.reqStorage] = r.ephemeralStorage;
    d[this.row + ROW.pods] = this.pods.size;
    d[this.row + ROW.nonZeroCPU] += sign * p.nonZeroCPU;
    d[this.row + ROW.nonZeroMemory] += sign * p.nonZeroMemory;
    if (p.hasAffinity) {
      if (sign > 0) this.podsWithAffinity.add(p);
      else this.podsWithAffinity.delete(p);
    }
    if (p.requiredAntiAffinity.length) {
      if (sign > 0) this.podsWithRequiredAntiAffinity.add(p);
      else this.podsWithRequiredAntiAffinity.delete(p);
    }
    for (const hp of p.hostPorts) {
      const k = portKey(hp.protocol, hp.port);
      let ips = this.usedPorts.get(k);
      if (!ips) this.usedPorts.set(k, (ips = new Map()));
      const n = (ips.get(hp.ip) ?? 0) + sign;
      if (n > 0) ips.set(hp.ip, n);
      else ips.delete(hp.ip);
      if (ips.size === 0) this.usedPorts.delete(k);
    }
  }

  /** The node's value of a label, the topology labels without a lookup among its keys. */
  label(key: string): string | undefined {
    if (key === LABEL_HOSTNAME) return this.hostname;
    if (key === LABEL_ZONE) return this.zone;
    return this.labels?.[key];
  }

  /** A wildcard bind (0.0.0.0) conflicts with any use of the port; a specific IP with itself or the wildcard. */
  portConflict(hp: HostPort): boolean {
    const ips = this.usedPorts.get(portKey(hp.protocol, hp.port));
    if (!ips) return false;
    return hp.ip === '0.0.0.0' || ips.has('0.0.0.0') || ips.has(hp.ip);
  }
}
