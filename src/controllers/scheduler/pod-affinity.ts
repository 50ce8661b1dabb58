// Inter-pod affinity and anti-affinity: required terms as a filter (including the symmetric rule that an
// existing pod's anti-affinity can refuse the incoming pod) and preferred terms as a score. Like
// kube-scheduler, matches are counted once per scheduling cycle into (topologyKey, value) tallies, so
// the per-node check is a few map lookups.
import { withLabelKeys } from './selectors.js';
import { compileLabelSelector, matchEverything, type LabelMatcher, type Labels } from '../../api/selectors.js';
import type { NodeInfo, PodInfo } from './node-info.js';
import type { LabelSelector, NamespaceLabels, Pod, PodAffinityTerm, WeightedPodAffinityTerm } from './types.js';

export interface AffinityTerm {
  selector: LabelMatcher;
  /** One `key=value` every matching pod must carry, so candidates come from a label index. */
  indexLabel: string | undefined;
  /** Namespaces named outright; the pod's own namespace when neither list nor selector is given. */
  namespaces: Set<string>;
  namespaceSelector: LabelMatcher | undefined;
  topologyKey: string;
}
export interface WeightedAffinityTerm { term: AffinityTerm; weight: number }

export function compileAffinityTerm(t: PodAffinityTerm, owner: Pod): AffinityTerm {
  const ns = owner.metadata.namespace ?? 'default';
  const namespaces = new Set(t.namespaces ?? []);
  const namespaceSelector = t.namespaceSelector ? compileLabelSelector(t.namespaceSelector) : undefined;
  if (namespaces.size === 0 && !namespaceSelector) namespaces.add(ns);
  const selector = compileLabelSelector(withLabelKeys(t.labelSelector, owner.metadata.labels, t.matchLabelKeys, t.mismatchLabelKeys));
  return { selector, indexLabel: requiredLabel(t.labelSelector), namespaces, namespaceSelector, topologyKey: t.topologyKey };
}

function requiredLabel(sel: LabelSelector | null | undefined): string | undefined {
  for (const k in sel?.matchLabels ?? {}) return `${k}=${sel!.matchLabels![k]}`;
  for (const e of sel?.matchExpressions ?? []) if (e.operator === 'In' && e.values?.length === 1) return `${e.key}=${e.values[0]}`;
  return undefined;
}

/** A pod bound to a node, as the snapshot records it. */
export interface Placed { readonly pod: PodInfo; readonly node: NodeInfo }

/** The pods on existing nodes that might match a term (a superset; callers still match each). */
export type CandidatePods = (term: AffinityTerm) => Iterable<Placed>;

export function compileWeighted(terms: WeightedPodAffinityTerm[] | undefined, owner: Pod): WeightedAffinityTerm[] {
  return (terms ?? []).map((w) => ({ term: compileAffinityTerm(w.podAffinityTerm, owner), weight: w.weight }));
}

/** Caches namespace labels for one scheduling cycle; namespaceSelector terms read them often. */
export class NamespaceLabelCache {
  private readonly seen = new Map<string, Labels>();
  constructor(private readonly lookup: NamespaceLabels | undefined) {}
  get(ns: string): Labels {
    if (!this.seen.has(ns)) this.seen.set(ns, this.lookup?.(ns));
    return this.seen.get(ns);
  }
}

export function termMatches(term: AffinityTerm, pod: PodInfo, nsLabels: NamespaceLabelCache): boolean {
  if (!term.namespaces.has(pod.namespace)) {
    if (!term.namespaceSelector) return false;
    // An empty namespaceSelector means every namespace, whether or not its labels are known.
    if (term.namespaceSelector !== matchEverything && !term.namespaceSelector(nsLabels.get(pod.namespace))) return false;
  }
  return term.selector(pod.labels);
}

/** Pod counts per topology domain, keyed by topology key then value (no string building per lookup). */
class TopologyCounts {
  readonly byKey = new Map<string, Map<string, number>>();
  add(key: string, value: string | undefined, by: number): void {
    if (value === undefined) return;
    let m = this.byKey.get(key);
    if (!m) this.byKey.set(key, (m = new Map()));
    m.set(value, (m.get(value) ?? 0) + by);
  }
  get(key: string, value: string): number {
    return this.byKey.get(key)?.get(value) ?? 0;
  }
  get empty(): boolean { return this.byKey.size === 0; }
}

/** The tallies the required-terms filter checks nodes against. */
export class AffinityFilterState {
  /** (key, value) domains holding pods that match all of the incoming pod's required affinity terms. */
  readonly affinityCounts = new TopologyCounts();
  /** Domains holding pods matching one of the incoming pod's required anti-affinity terms. */
  readonly antiAffinityCounts = new TopologyCounts();
  /** Domains whose existing pods' required anti-affinity refuses the incoming pod. */
  readonly existingAntiAffinityCounts = new TopologyCounts();
  private selfMatch = false;

  constructor(private readonly pod: PodInfo, candidates: CandidatePods, nodesWithAntiAffinityPods: Iterable<NodeInfo>, nsLabels: NamespaceLabelCache) {
    for (const node of nodesWithAntiAffinityPods) {
      for (const existing of node.podsWithRequiredAntiAffinity) {
        for (const term of existing.requiredAntiAffinity) {
          if (termMatches(term, pod, nsLabels)) this.existingAntiAffinityCounts.add(term.topologyKey, node.labels?.[term.topologyKey], 1);
        }
      }
    }
    const aff = pod.requiredAffinity;
    if (aff.length) {
      for (const { pod: existing, node } of candidates(aff[0]!)) {
        if (aff.every((t) => termMatches(t, existing, nsLabels))) {
          for (const t of aff) this.affinityCounts.add(t.topologyKey, node.labels?.[t.topologyKey], 1);
        }
      }
      // The first pod of a group that wants to be near its own kind may go anywhere its topology exists.
      this.selfMatch = aff.every((t) => termMatches(t, pod, nsLabels));
    }
    for (const t of pod.requiredAntiAffinity) {
      for (const { pod: existing, node } of candidates(t)) {
        if (termMatches(t, existing, nsLabels)) this.antiAffinityCounts.add(t.topologyKey, node.labels?.[t.topologyKey], 1);
      }
    }
  }

  /** Which rule refuses the node, or undefined if it passes. */
  check(node: NodeInfo): 'affinity' | 'antiAffinity' | 'existingAntiAffinity' | undefined {
    const labels = node.labels;
    const aff = this.pod.requiredAffinity;
    if (aff.length) {
      let podsExist = true;
      for (const t of aff) {
        const v = labels?.[t.topologyKey];
        if (v === undefined) return 'affinity';
        if (this.affinityCounts.get(t.topologyKey, v) <= 0) podsExist = false;
      }
      if (!podsExist && !(this.affinityCounts.empty && this.selfMatch)) return 'affinity';
    }
    if (!this.antiAffinityCounts.empty) {
      for (const t of this.pod.requiredAntiAffinity) {
        const v = labels?.[t.topologyKey];
        if (v !== undefined && this.antiAffinityCounts.get(t.topologyKey, v) > 0) return 'antiAffinity';
      }
    }
    if (!this.existingAntiAffinityCounts.empty) {
      for (const [key, values] of this.existingAntiAffinityCounts.byKey) {
        const v = labels?.[key];
        if (v !== undefined && (values.get(v) ?? 0) > 0) return 'existingAntiAffinity';
      }
    }
    return undefined;
  }
}

// The weight an existing pod's required affinity toward the incoming pod adds to its domain
// (kube-scheduler's hardPodAffinityWeight default).
const HARD_POD_AFFINITY_WEIGHT = 1;

/**
 * Preferred-term scoring: each domain gains or loses the weights of terms linking the incoming pod and
 * the pods already there, in both directions. Raw scores; normalize with `normalizeAffinityScores`.
 */
export class AffinityScoreState {
  private readonly counts = new TopologyCounts();

  constructor(pod: PodInfo, candidates: CandidatePods, nodesWithAffinityPods: Iterable<NodeInfo>, nsLabels: NamespaceLabelCache) {
    const add = (term: AffinityTerm, weight: number, target: PodInfo, node: NodeInfo) => {
      const v = node.labels?.[term.topologyKey];
      if (v !== undefined && termMatches(term, target, nsLabels)) this.counts.add(term.topologyKey, v, weight);
    };
    for (const w of pod.preferredAffinity) for (const e of candidates(w.term)) add(w.term, w.weight, e.pod, e.node);
    for (const w of pod.preferredAntiAffinity) for (const e of candidates(w.term)) add(w.term, -w.weight, e.pod, e.node);
    for (const node of nodesWithAffinityPods) {
      for (const existing of node.podsWithAffinity) {
        for (const t of existing.requiredAffinity) add(t, HARD_POD_AFFINITY_WEIGHT, pod, node);
        for (const w of existing.preferredAffinity) add(w.term, w.weight, pod, node);
        for (const w of existing.preferredAntiAffinity) add(w.term, -w.weight, pod, node);
      }
    }
  }

  get empty(): boolean { return this.counts.empty; }

  score(node: NodeInfo): number {
    let s = 0;
    for (const [key, values] of this.counts.byKey) {
      const v = node.labels?.[key];
      if (v !== undefined) s += values.get(v) ?? 0;
    }
    return s;
  }
}
