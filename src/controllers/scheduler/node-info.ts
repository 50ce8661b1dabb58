// Per-pod and per-node facts computed once (when a pod or node is added) instead of on every scheduling
// attempt: parsed requests, host ports, compiled affinity terms, and each node's running totals.
import { compileAffinityTerm, compileWeighted, type AffinityTerm, type WeightedAffinityTerm } from './pod-affinity.js';
import { addResources, emptyResources, podRequests, resourcesOf, type Resources } from './resources.js';
import { effectiveTaints } from './taints.js';
import type { Labels } from '../../api/selectors.js';
import type { Node, Pod, Taint } from './types.js';

export interface HostPort { ip: string; protocol: string; port: number }

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

  constructor(readonly pod: Pod) {
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

export class NodeInfo {
  node: Node | undefined;
  labels: Labels = undefined;
  taints: Taint[] = [];
  unschedulable = false;
  allocatable: Resources = emptyResources();
  readonly pods = new Map<string, PodInfo>();
  readonly requested: Resources = emptyResources();
  nonZeroCPU = 0;
  nonZeroMemory = 0;
  /** "TCP/80" → host IPs using it, with a use count (several pods may bind distinct IPs). */
  private readonly usedPorts = new Map<string, Map<string, number>>();
  /** The few pods other pods' scheduling must look at, kept apart so the rest can be skipped. */
  readonly podsWithAffinity = new Set<PodInfo>();
  readonly podsWithRequiredAntiAffinity = new Set<PodInfo>();
  /** Live (not terminating) pods per owner uid, for spreading a controller's replicas. */
  readonly ownerCounts = new Map<string, number>();

  constructor(readonly name: string) {}

  setNode(node: Node | undefined): void {
    this.node = node;
    this.labels = node?.metadata.labels;
    this.taints = node ? effectiveTaints(node) : [];
    this.unschedulable = node?.spec?.unschedulable === true;
    this.allocatable = resourcesOf(node?.status?.allocatable);
  }

  addPod(p: PodInfo): void { this.account(p, 1); this.pods.set(p.key, p); }
  removePod(p: PodInfo): void { this.account(p, -1); this.pods.delete(p.key); }

  private account(p: PodInfo, sign: 1 | -1): void {
    addResources(this.requested, p.requests, sign);
    this.nonZeroCPU += sign * p.nonZeroCPU;
    this.nonZeroMemory += sign * p.nonZeroMemory;
    if (p.hasAffinity) {
      if (sign > 0) this.podsWithAffinity.add(p);
      else this.podsWithAffinity.delete(p);
    }
    if (p.requiredAntiAffinity.length) {
      if (sign > 0) this.podsWithRequiredAntiAffinity.add(p);
      else this.podsWithRequiredAntiAffinity.delete(p);
    }
    if (p.owner && !p.terminating) {
      const n = (this.ownerCounts.get(p.owner) ?? 0) + sign;
      if (n > 0) this.ownerCounts.set(p.owner, n);
      else this.ownerCounts.delete(p.owner);
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

  /** A wildcard bind (0.0.0.0) conflicts with any use of the port; a specific IP with itself or the wildcard. */
  portConflict(hp: HostPort): boolean {
    const ips = this.usedPorts.get(portKey(hp.protocol, hp.port));
    if (!ips) return false;
    return hp.ip === '0.0.0.0' || ips.has('0.0.0.0') || ips.has(hp.ip);
  }
}
