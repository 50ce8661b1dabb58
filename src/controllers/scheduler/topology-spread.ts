// Pod topology spread. DoNotSchedule constraints filter (skew = pods in the node's domain + the pod
// itself - the least-loaded domain, at most maxSkew); ScheduleAnyway constraints score. A pod with no
// constraints of its own gets Kubernetes' system defaults (hostname maxSkew 3, zone maxSkew 5,
// ScheduleAnyway) over the pods of its own controller, which is what spreads a Deployment's replicas.
import type { NodeAffinity } from './node-affinity.js';
import { LABEL_HOSTNAME, LABEL_ZONE, type NodeInfo, type PodInfo } from './node-info.js';
import { withLabelKeys } from './selectors.js';
import { compileLabelSelector } from '../../api/selectors.js';
import { firstUntoleratedTaint } from './taints.js';
import type { Pod, TopologySpreadConstraint } from './types.js';

interface Constraint {
  maxSkew: number;
  topologyKey: string;
  minDomains: number;
  honorAffinity: boolean;
  honorTaints: boolean;
  /** Matching pods on a node (live, same namespace, selected). */
  count: (node: NodeInfo) => number;
  selfMatch: boolean;
}

function compile(pod: Pod, info: PodInfo, c: TopologySpreadConstraint): Constraint {
  const selector = compileLabelSelector(withLabelKeys(c.labelSelector, pod.metadata.labels, c.matchLabelKeys));
  return {
    maxSkew: c.maxSkew,
    topologyKey: c.topologyKey,
    minDomains: c.minDomains ?? 1,
    honorAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor',
    honorTaints: c.nodeTaintsPolicy === 'Honor',
    selfMatch: selector(info.labels),
    count: (node) => {
      let n = 0;
      for (const p of node.pods.values()) if (!p.terminating && p.namespace === info.namespace && selector(p.labels)) n++;
      return n;
    },
  };
}

/** The nodes holding an owner's live pods, with how many each (ClusterSnapshot.ownerNodes). */
export type OwnerNodes = (owner: string) => ReadonlyMap<NodeInfo, number> | undefined;

function systemDefaults(info: PodInfo, ownerNodes: OwnerNodes): Constraint[] {
  const owner = info.owner;
  if (!owner) return [];
  // One small map per owner, looked up for each scored node, rather than a map per node: hundreds
  // of those per pod were a fifth of the scheduling cycle, most of it waiting on memory.
  const owned = ownerNodes(owner);
  const count = owned ? (node: NodeInfo) => owned.get(node) ?? 0 : () => 0;
  const base = { minDomains: 1, honorAffinity: true, honorTaints: false, count, selfMatch: true };
  return [{ ...base, topologyKey: LABEL_HOSTNAME, maxSkew: 3 }, { ...base, topologyKey: LABEL_ZONE, maxSkew: 5 }];
}

function hasAllKeys(node: NodeInfo, constraints: Constraint[]): boolean {
  for (const c of constraints) if (node.label(c.topologyKey) === undefined) return false;
  return true;
}

function included(c: Constraint, node: NodeInfo, pod: Pod, affinity: NodeAffinity): boolean {
  if (c.honorAffinity && affinity.constrained && !affinity.matches(node)) return false;
  if (c.honorTaints && firstUntoleratedTaint(node.taints, pod.spec?.tolerations ?? [])) return false;
  return true;
}

export function hasHardConstraints(pod: Pod): boolean {
  return (pod.spec?.topologySpreadConstraints ?? []).some((c) => c.whenUnsatisfiable === 'DoNotSchedule');
}

export class SpreadFilterState {
  private readonly constraints: Constraint[];
  private readonly counts: Map<string, number>[];
  private readonly minimum: number[];

  constructor(pod: Pod, info: PodInfo, affinity: NodeAffinity, nodes: NodeInfo[]) {
    this.constraints = (pod.spec?.topologySpreadConstraints ?? [])
      .filter((c) => c.whenUnsatisfiable === 'DoNotSchedule')
      .map((c) => compile(pod, info, c));
    this.counts = this.constraints.map(() => new Map());
    for (const node of nodes) {
      if (!hasAllKeys(node, this.constraints)) continue;
      this.constraints.forEach((c, i) => {
        if (!included(c, node, pod, affinity)) return;
        const v = node.label(c.topologyKey)!;
        this.counts[i]!.set(v, (this.counts[i]!.get(v) ?? 0) + c.count(node));
      });
    }
    this.minimum = this.constraints.map((c, i) => {
      const m = this.counts[i]!;
      // Fewer domains than minDomains: the missing ones count as empty, so the minimum is 0.
      if (m.size < c.minDomains) return 0;
      return m.size ? Math.min(...m.values()) : Number.POSITIVE_INFINITY;
    });
  }

  check(node: NodeInfo): 'missingLabel' | 'skew' | undefined {
    for (let i = 0; i < this.constraints.length; i++) {
      const c = this.constraints[i]!;
      const v = node.label(c.topologyKey);
      if (v === undefined) return 'missingLabel';
      const skew = (this.counts[i]!.get(v) ?? 0) + (c.selfMatch ? 1 : 0) - this.minimum[i]!;
      if (skew > c.maxSkew) return 'skew';
    }
    return undefined;
  }
}

/** Raw spread scores (more matching pods nearby = higher); normalize with `normalizeSpreadScores`. */
export class SpreadScoreState {
  private readonly constraints: Constraint[];
  private readonly requireAll: boolean;
  private readonly domainCounts: Map<string, number>[];
  private readonly weights: number[];
  private readonly ignored = new Set<NodeInfo>();

  /**
   * `ownerNodes` names the nodes holding live pods of an owner: the system defaults count only those
   * pods, so the zones' counts come from those nodes instead of a pass over `all`.
   * Plain loops, no callbacks: this runs for each of hundreds of feasible nodes per pod.
   */
  constructor(pod: Pod, info: PodInfo, affinity: NodeAffinity, feasible: NodeInfo[], all: NodeInfo[], ownerNodes: OwnerNodes) {
    const own = pod.spec?.topologySpreadConstraints ?? [];
    const constraints = this.constraints = own.length
      ? own.filter((c) => c.whenUnsatisfiable === 'ScheduleAnyway').map((c) => compile(pod, info, c))
      : systemDefaults(info, ownerNodes);
    // Defaults do not require every key, so nodes without a zone label still spread by hostname.
    this.requireAll = own.length > 0;
    this.domainCounts = constraints.map(() => new Map());
    const sizes = constraints.map(() => 0);
    let zonal = false;
    for (const node of feasible) {
      if (this.requireAll && !hasAllKeys(node, constraints)) { this.ignored.add(node); continue; }
      for (let i = 0; i < constraints.length; i++) {
        const key = constraints[i]!.topologyKey;
        if (key === LABEL_HOSTNAME) continue;
        const v = node.label(key);
        if (v !== undefined && !this.domainCounts[i]!.has(v)) { this.domainCounts[i]!.set(v, 0); sizes[i]!++; zonal = true; }
      }
    }
    this.weights = constraints.map((c, i) =>
      Math.log((c.topologyKey === LABEL_HOSTNAME ? feasible.length - this.ignored.size : sizes[i]!) + 2));
    if (!zonal) return;
    const owned = !own.length && info.owner ? ownerNodes(info.owner) : undefined;
    const counted = owned ? owned.keys() : !own.length && info.owner ? [] : all;
    for (const node of counted) {
      // An owner's pods may still be accounted to a node that is gone.
      if (!node.node) continue;
      if (this.requireAll && !hasAllKeys(node, constraints)) continue;
      for (let i = 0; i < constraints.length; i++) {
        const c = constraints[i]!;
        if (c.topologyKey === LABEL_HOSTNAME || !included(c, node, pod, affinity)) continue;
        const m = this.domainCounts[i]!;
        const v = node.label(c.topologyKey);
        if (v !== undefined && m.has(v)) m.set(v, m.get(v)! + c.count(node));
      }
    }
  }

  get empty(): boolean { return this.constraints.length === 0; }

  /** Undefined for nodes left out of spreading (they score 0 after normalizing). */
  score(node: NodeInfo): number | undefined {
    if (this.requireAll && this.ignored.has(node)) return undefined;
    let s = 0;
    for (let i = 0; i < this.constraints.length; i++) {
      const c = this.constraints[i]!;
      const v = node.label(c.topologyKey);
      if (v === undefined) continue;
      const cnt = c.topologyKey === LABEL_HOSTNAME ? c.count(node) : this.domainCounts[i]!.get(v) ?? 0;
      // maxSkew - 1 is added so small differences between domains weigh less when skew is tolerated.
      s += cnt * this.weights[i]! + (c.maxSkew - 1);
    }
    return Math.round(s);
  }
}
